"""The scaffolder's contributions to the portal, registered through ``paved.plugins``."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, FastAPI
from sqlmodel import Session

from catalog import service as catalog
from portal import Action, NavItem, Settings, TaskHandler, hookimpl
from scaffolder import api, execution, pages, service
from scaffolder.actions import SCAFFOLDER_ACTIONS
from scaffolder.golden_paths import GOLDEN_PATHS

POLICY_DIR = Path(__file__).parent / "policies"


@hookimpl
def paved_actions() -> list[Action]:
    return SCAFFOLDER_ACTIONS


@hookimpl
def paved_routes() -> list[APIRouter]:
    return [api.router, pages.router]


@hookimpl
def paved_nav_items() -> list[NavItem]:
    return [NavItem("Create", "/create", order=20)]


@hookimpl
def paved_task_handlers() -> list[TaskHandler]:
    return [execution.HANDLER]


@hookimpl
def paved_policy_dirs() -> list[Path]:
    return [POLICY_DIR]


@hookimpl
def paved_startup(app: FastAPI, settings: Settings) -> None:
    """The actions templates may use, collected now (a plugin whose action id is taken
    shows as degraded from the start), and the workspaces no retry needs removed."""
    execution.actions_of(app.state.plugins)
    with Session(app.state.engine) as session:
        service.sweep_workspaces(session, settings=settings)


@hookimpl
def paved_demo_data(session: Session, settings: Settings) -> None:
    """Paved's golden-path templates, offered under Create."""
    target = GOLDEN_PATHS / "catalog-info.yaml"
    catalog.add_location(session, "file", str(target), by="demo", settings=settings.catalog)

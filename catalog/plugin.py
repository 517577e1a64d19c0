"""The catalog's contributions to the portal, registered through ``paved.plugins``."""

from __future__ import annotations

from fastapi import APIRouter, FastAPI
from sqlmodel import Session

from catalog import api, generation, pages, refresh, service
from catalog.actions import CATALOG_ACTIONS
from portal import Action, NavItem, Settings, TaskHandler, hookimpl


@hookimpl
def paved_actions() -> list[Action]:
    return CATALOG_ACTIONS


@hookimpl
def paved_routes() -> list[APIRouter]:
    return [api.router, pages.router]


@hookimpl
def paved_nav_items() -> list[NavItem]:
    return [NavItem("Catalog", "/catalog", order=10)]


@hookimpl
def paved_demo_data(session: Session, settings: Settings) -> None:
    service.register_demo(session, settings.catalog)


@hookimpl
def paved_task_handlers() -> list[TaskHandler]:
    return [refresh.HANDLER]


@hookimpl
def paved_startup(app: FastAPI, settings: Settings) -> None:
    """Queue a refresh of every location each ``catalog.refresh_interval`` seconds, and
    watch the catalog's generation."""
    scheduler = refresh.RefreshScheduler(app.state.engine, settings.catalog.refresh_interval)
    scheduler.start()
    app.state.catalog_refresh = scheduler
    generation.watch(app.state.engine, settings.catalog.remembered_mb * 1024 * 1024)


@hookimpl
def paved_shutdown(app: FastAPI) -> None:
    scheduler: refresh.RefreshScheduler | None = getattr(app.state, "catalog_refresh", None)
    if scheduler is not None:
        scheduler.stop()
    generation.unwatch(app.state.engine)

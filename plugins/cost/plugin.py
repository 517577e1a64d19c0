"""Cost chargeback's contributions to the portal, registered through ``paved.plugins``."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import click
from fastapi import APIRouter, FastAPI
from sqlalchemy.engine import Engine
from sqlmodel import Session

from catalog.refs import parse_ref
from plugins.cost import api, cli, pages, service
from plugins.cost.actions import COST_ACTIONS
from plugins.cost.demo import load_demo
from plugins.cost.opencost import opencost_source
from portal import Action, EntityTab, InvalidInput, NavItem, TaskHandler, facts_for, hookimpl
from portal.settings import Settings
from portal.usage import UsageSource

log = logging.getLogger(__name__)
TEMPLATES = Path(__file__).parent / "templates"
POLICIES = Path(__file__).parent / "policies"
# The budget rule decides on new training jobs.
TRAINING_SUBMIT = "training.job.submit"


@hookimpl
def paved_actions() -> list[Action]:
    return COST_ACTIONS


@hookimpl
def paved_routes() -> list[APIRouter]:
    return [api.router, pages.router]


@hookimpl
def paved_nav_items() -> list[NavItem]:
    return [NavItem("Cost", "/cost", order=60)]


@hookimpl
def paved_entity_tabs() -> list[EntityTab]:
    path = "/cost/tabs/{kind}/{namespace}/{name}"
    return [EntityTab("cost", "Cost", path, kinds=("Group",), order=30)]


@hookimpl
def paved_template_dirs() -> list[Path]:
    return [TEMPLATES]


@hookimpl
def paved_policy_dirs() -> list[Path]:
    return [POLICIES]


@hookimpl
def paved_task_handlers() -> list[TaskHandler]:
    return [TaskHandler(service.TASK_KIND, service.run_collection, title="Usage collection")]


@hookimpl
def paved_cost_sources(settings: Settings) -> list[UsageSource]:
    source = opencost_source(settings.cost.opencost)
    return [source] if source is not None else []


@hookimpl
def paved_cli_commands() -> list[click.Command]:
    return [cli.cost]


@hookimpl
@facts_for(TRAINING_SUBMIT)
def paved_policy_context(
    resource: dict[str, Any] | None, engine: Engine, settings: Settings
) -> dict[str, Any] | None:
    """``budget``: the project's team's budget this month and its spending, when it has one."""
    owner = (resource or {}).get("owner")
    if not isinstance(owner, str) or not owner:
        return None
    try:
        team = parse_ref(owner, default_kind="group").key
    except InvalidInput:
        return None
    with Session(engine) as session:
        facts = service.budget_facts(session, team, settings)
    return {"budget": facts} if facts is not None else None


@hookimpl
def paved_startup(app: FastAPI, settings: Settings) -> None:
    earlier: service.Schedule | None = getattr(app.state, "cost_schedule", None)
    if earlier is not None:  # the app started again in this process (tests do)
        earlier.stop()
    schedule = service.Schedule(app.state.engine, settings)
    schedule.start()
    app.state.cost_schedule = schedule


@hookimpl
def paved_shutdown(app: FastAPI) -> None:
    schedule: service.Schedule | None = getattr(app.state, "cost_schedule", None)
    if schedule is not None:
        schedule.stop()


@hookimpl
def paved_demo_data(session: Session, settings: Settings) -> None:
    load_demo(session, settings)

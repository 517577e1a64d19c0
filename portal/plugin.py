"""The core's own contributions, registered through ``paved.plugins`` like any plugin."""

from __future__ import annotations

from fastapi import APIRouter
from sqlmodel import Session

from portal import (
    Action,
    NavItem,
    Settings,
    TaskHandler,
    api,
    audit_api,
    hookimpl,
    pages,
    selfcheck,
    tasks,
)
from portal.access_evidence import COLLECTORS
from portal.actions import CORE_ACTIONS
from portal.evidence import EvidenceCollector


@hookimpl
def paved_actions() -> list[Action]:
    return CORE_ACTIONS


@hookimpl
def paved_routes() -> list[APIRouter]:
    return [pages.router, api.router, audit_api.router]


@hookimpl
def paved_nav_items() -> list[NavItem]:
    return [
        NavItem("Home", "/", order=0),
        NavItem("Tasks", "/tasks", order=900),
        NavItem("Audit", "/audit", order=950),
        NavItem("Plugins", "/admin/plugins", order=990),
    ]


@hookimpl
def paved_task_handlers() -> list[TaskHandler]:
    return [selfcheck.HANDLER]


@hookimpl
def paved_evidence_collectors(settings: Settings) -> list[EvidenceCollector]:
    return COLLECTORS


@hookimpl
def paved_demo_data(session: Session, settings: Settings) -> None:
    tasks.enqueue(session, selfcheck.KIND, title="Check this installation", created_by="demo")

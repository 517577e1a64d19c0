"""The hooks that wire ${{ values.title }} into Paved (see Paved's docs/plugins.md)."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from portal import Action, NavItem, TaskHandler, hookimpl
from scaffolder.steps import StepAction

from . import TITLE, actions, api, pages, service, steps

HERE = Path(__file__).parent


@hookimpl
def paved_actions() -> list[Action]:
    return [actions.PAGE_READ, actions.REVIEW_REQUEST]


@hookimpl
def paved_routes() -> list[APIRouter]:
    return [api.router, pages.router]


@hookimpl
def paved_nav_items() -> list[NavItem]:
    return [NavItem(TITLE, "/${{ values.name }}", order=60)]


@hookimpl
def paved_template_dirs() -> list[Path]:
    return [HERE / "templates"]


@hookimpl
def paved_policy_dirs() -> list[Path]:
    return [HERE / "policies"]


@hookimpl
def paved_task_handlers() -> list[TaskHandler]:
    return [service.REVIEW]


@hookimpl
def paved_scaffolder_actions() -> list[StepAction]:
    return [steps.CHECKLIST]

"""Training's contributions to the portal, registered through ``paved.plugins``."""

from __future__ import annotations

from pathlib import Path

import click
from fastapi import APIRouter, FastAPI

from plugins.training import api, cli, pages, service, usage
from plugins.training.actions import TRAINING_ACTIONS
from plugins.training.backends import TrainingBackend
from plugins.training.kubernetes import KUBERNETES
from plugins.training.local import LOCAL
from portal import Action, EntityTab, NavItem, Settings, TaskHandler, hookimpl
from portal.usage import UsageSource

TEMPLATES = Path(__file__).parent / "templates"


@hookimpl
def paved_actions() -> list[Action]:
    return TRAINING_ACTIONS


@hookimpl
def paved_routes() -> list[APIRouter]:
    return [api.router, pages.router]


@hookimpl
def paved_nav_items() -> list[NavItem]:
    return [NavItem("Training", "/training", order=30)]


@hookimpl
def paved_entity_tabs() -> list[EntityTab]:
    return [
        EntityTab(
            "training",
            "Training",
            "/training/tabs/{kind}/{namespace}/{name}",
            kinds=("Component", "Model"),
            order=30,
        )
    ]


@hookimpl
def paved_template_dirs() -> list[Path]:
    return [TEMPLATES]


@hookimpl
def paved_task_handlers() -> list[TaskHandler]:
    return [service.HANDLER]


@hookimpl
def paved_training_backends() -> list[TrainingBackend]:
    return [LOCAL, KUBERNETES]


@hookimpl
def paved_cli_commands() -> list[click.Command]:
    return [cli.train]


@hookimpl
def paved_startup(app: FastAPI, settings: Settings) -> None:
    app.state.training_backends = service.available_backends(app.state.plugins)


@hookimpl
def paved_cost_sources() -> list[UsageSource]:
    return [usage.SOURCE]

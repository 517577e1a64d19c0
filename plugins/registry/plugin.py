"""The model registry's contributions to the portal, registered through ``paved.plugins``."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, FastAPI

from plugins.registry import api, pages
from plugins.registry.actions import REGISTRY_ACTIONS
from portal import Action, EntityTab, Settings, hookimpl
from portal.tracking import EmbeddedServer

TEMPLATES = Path(__file__).parent / "templates"
POLICIES = Path(__file__).parent / "policies"


@hookimpl
def paved_actions() -> list[Action]:
    return REGISTRY_ACTIONS


@hookimpl
def paved_routes() -> list[APIRouter]:
    return [api.router, pages.router]


@hookimpl
def paved_entity_tabs() -> list[EntityTab]:
    path = "/registry/tabs/{kind}/{namespace}/{name}"
    return [EntityTab("registry", "Registry", path, kinds=("Model",), order=20)]


@hookimpl
def paved_template_dirs() -> list[Path]:
    return [TEMPLATES]


@hookimpl
def paved_policy_dirs() -> list[Path]:
    return [POLICIES]


@hookimpl
def paved_startup(app: FastAPI, settings: Settings) -> None:
    """The embedded MLflow server (its UI), when the store is embedded and it is wanted."""
    app.state.mlflow_server = None
    if settings.mlflow.tracking_uri is None and settings.mlflow.embedded_server:
        app.state.mlflow_server = EmbeddedServer(settings)
        app.state.mlflow_server.start()


@hookimpl
def paved_shutdown(app: FastAPI) -> None:
    server: EmbeddedServer | None = getattr(app.state, "mlflow_server", None)
    if server is not None:
        server.stop()

"""Serving's contributions to the portal, registered through ``paved.plugins``."""

from __future__ import annotations

import logging
from collections.abc import Awaitable
from pathlib import Path

import click
from fastapi import APIRouter, FastAPI
from sqlmodel import Session

from plugins.serving import api, apply, cli, evidence, pages, service, usage
from plugins.serving.actions import SERVING_ACTIONS
from plugins.serving.kubernetes import kubernetes_runtime
from plugins.serving.local import LOCAL, stop_servers
from plugins.serving.runtimes import ServingRuntime
from plugins.serving.traffic import Traffic
from portal import Action, EntityTab, NavItem, Settings, TaskHandler, hookimpl, hot_path
from portal.evidence import EvidenceCollector
from portal.usage import UsageSource

log = logging.getLogger("paved.serving")

TEMPLATES = Path(__file__).parent / "templates"
POLICIES = Path(__file__).parent / "policies"


@hookimpl
def paved_actions() -> list[Action]:
    return SERVING_ACTIONS


@hookimpl
def paved_routes() -> list[APIRouter]:
    # Predictions are the hot path: their router is tried before every other route.
    return [hot_path(api.serve_router), api.router, pages.router]


@hookimpl
def paved_nav_items() -> list[NavItem]:
    return [NavItem("Serving", "/serving", order=40)]


@hookimpl
def paved_entity_tabs() -> list[EntityTab]:
    path = "/serving/tabs/{kind}/{namespace}/{name}"
    return [EntityTab("serving", "Serving", path, kinds=("Model",), order=25)]


@hookimpl
def paved_template_dirs() -> list[Path]:
    return [TEMPLATES]


@hookimpl
def paved_policy_dirs() -> list[Path]:
    return [POLICIES]


@hookimpl
def paved_task_handlers() -> list[TaskHandler]:
    return [apply.HANDLER]


@hookimpl
def paved_serving_runtimes(settings: Settings) -> list[ServingRuntime]:
    return [LOCAL, kubernetes_runtime(settings)]


@hookimpl
def paved_cli_commands() -> list[click.Command]:
    return [cli.deploy, cli.rollback, cli.status, cli.logs]


@hookimpl
def paved_startup(app: FastAPI, settings: Settings) -> None:
    runtimes = service.available_runtimes(app.state.plugins, settings)
    app.state.serving_runtimes = runtimes
    earlier: Traffic | None = getattr(app.state, "serving_traffic", None)
    if earlier is not None:  # the app started again in this process (tests do)
        earlier.stop()
    traffic = Traffic(app.state.engine, settings)
    traffic.runtimes = runtimes
    app.state.serving_traffic = traffic
    # Local model servers stop with the portal: bring back what served when it stopped.
    with Session(app.state.engine) as session:
        restored = service.restore_all(session, runtimes)
        session.commit()
    if restored:
        log.info("restoring %d deployment(s): %s", len(restored), ", ".join(restored))
    traffic.start()


@hookimpl
def paved_shutdown(app: FastAPI) -> Awaitable[None] | None:
    stop_servers(app.state.settings)
    traffic: Traffic | None = getattr(app.state, "serving_traffic", None)
    if traffic is None:
        return None
    traffic.stop()
    return traffic.forwarder.aclose()  # its connections end on the event loop


@hookimpl
def paved_cost_sources() -> list[UsageSource]:
    return [usage.SOURCE]


@hookimpl
def paved_evidence_collectors() -> list[EvidenceCollector]:
    return evidence.COLLECTORS

"""PII scanning's contributions to the portal, registered through ``paved.plugins``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import APIRouter
from sqlalchemy.engine import Engine
from sqlmodel import Session

from plugins.pii import api, evidence, pages, service
from plugins.pii.actions import PII_ACTIONS
from portal import Action, EntityTab, TaskHandler, facts_for, hookimpl
from portal.evidence import EvidenceCollector

TEMPLATES = Path(__file__).parent / "templates"
# The production rule of serving decides on the scans of a model's training data.
DEPLOYMENT_CREATE = "serving.deployment.create"


@hookimpl
def paved_actions() -> list[Action]:
    return PII_ACTIONS


@hookimpl
def paved_routes() -> list[APIRouter]:
    return [api.router, pages.router]


@hookimpl
def paved_entity_tabs() -> list[EntityTab]:
    path = "/pii/tabs/{kind}/{namespace}/{name}"
    return [EntityTab("pii", "PII", path, kinds=("Dataset",), order=20)]


@hookimpl
def paved_template_dirs() -> list[Path]:
    return [TEMPLATES]


@hookimpl
def paved_task_handlers() -> list[TaskHandler]:
    return [TaskHandler(service.TASK_KIND, service.run_scan, title="PII scan")]


@hookimpl
@facts_for(DEPLOYMENT_CREATE)
def paved_policy_context(resource: dict[str, Any] | None, engine: Engine) -> dict[str, Any] | None:
    """``pii_scans``: the latest completed scan of each training dataset of the deploy,
    ``clean`` or ``pii_found``; datasets never scanned are absent."""
    datasets = [
        str(found["ref"])
        for found in (resource or {}).get("datasets") or []
        if isinstance(found, dict) and found.get("ref")
    ]
    if not datasets:
        return None
    with Session(engine) as session:
        return {"pii_scans": service.results_of(session, datasets)}


@hookimpl
def paved_evidence_collectors() -> list[EvidenceCollector]:
    return [evidence.COLLECTOR]

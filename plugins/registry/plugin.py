"""The model registry's contributions to the portal, registered through ``paved.plugins``."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter

from plugins.registry import api, evidence, pages, usage
from plugins.registry.actions import REGISTRY_ACTIONS
from portal import Action, EntityTab, hookimpl
from portal.evidence import EvidenceCollector
from portal.usage import UsageSource

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
def paved_cost_sources() -> list[UsageSource]:
    return [usage.SOURCE]


@hookimpl
def paved_evidence_collectors() -> list[EvidenceCollector]:
    return [evidence.COLLECTOR]

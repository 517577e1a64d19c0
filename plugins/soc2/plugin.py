"""SOC 2 evidence's contributions to the portal, registered through ``paved.plugins``."""

from __future__ import annotations

from pathlib import Path

import click
from fastapi import APIRouter

from plugins.soc2 import api, cli, pages, service
from plugins.soc2.actions import SOC2_ACTIONS
from portal import Action, NavItem, TaskHandler, hookimpl
from portal.evidence import EvidenceCollector
from portal.settings import Settings

TEMPLATES = Path(__file__).parent / "templates"
POLICIES = Path(__file__).parent / "policies"


@hookimpl
def paved_actions() -> list[Action]:
    return SOC2_ACTIONS


@hookimpl
def paved_routes() -> list[APIRouter]:
    return [api.router, pages.router]


@hookimpl
def paved_nav_items() -> list[NavItem]:
    return [NavItem("Evidence", "/soc2", order=940)]


@hookimpl
def paved_template_dirs() -> list[Path]:
    return [TEMPLATES]


@hookimpl
def paved_policy_dirs() -> list[Path]:
    return [POLICIES]


@hookimpl
def paved_task_handlers() -> list[TaskHandler]:
    return [TaskHandler(service.TASK_KIND, service.run_export, title="Evidence export")]


@hookimpl
def paved_evidence_collectors(settings: Settings) -> list[EvidenceCollector]:
    return [service.REVIEW_COLLECTOR]


@hookimpl
def paved_cli_commands() -> list[click.Command]:
    return [cli.evidence]

"""The scaffolder REST API under ``/api/scaffolder``, with the routes and shapes of
Backstage's scaffolder backend."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends

from catalog.refs import EntityRef
from portal import requires
from portal.db import SessionDep
from portal.problems import use_backstage_statuses
from scaffolder import actions, templates
from scaffolder.steps.builtin import BUILT_IN_ACTIONS

router = APIRouter(
    prefix="/api/scaffolder",
    tags=["scaffolder"],
    dependencies=[Depends(use_backstage_statuses)],
)


@router.get("/v2/actions", dependencies=[requires(actions.ACTION_READ)])
def list_actions() -> list[dict[str, Any]]:
    """Every action a template's steps may use, with its input and output schemas."""
    return [action.listed() for action in BUILT_IN_ACTIONS]


@router.get(
    "/v2/templates/{namespace}/{kind}/{name}/parameter-schema",
    dependencies=[requires(actions.TEMPLATE_READ)],
)
def parameter_schema(namespace: str, kind: str, name: str, session: SessionDep) -> dict[str, Any]:
    """The form a template asks to fill: its title and one JSON schema per step."""
    return templates.parameter_schema(session, EntityRef(kind, namespace, name))

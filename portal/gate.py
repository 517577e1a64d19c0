"""Routes declare the action they perform; this is where that declaration lives."""

from __future__ import annotations

from typing import Any

from fastapi import Depends, Request
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from starlette.routing import BaseRoute

from portal.actions import Action

# Routes that need no action: liveness, readiness, metrics scraping and static files.
UNGATED_PATHS = frozenset({"/healthz", "/readyz", "/metrics", "/static"})


def requires(action: Action) -> Any:
    """Declare that a route performs ``action``.

    Use as ``dependencies=[requires(actions.X)]`` or as a parameter's default. The route
    walker (``route_action``) reads it back, and the request carries it as
    ``request.state.action`` for logs and decisions.
    """

    def declared_action(request: Request) -> Action:
        request.state.action = action
        return action

    declared_action.paved_action = action  # type: ignore[attr-defined]
    return Depends(declared_action)


def _find_action(dependant: Dependant) -> Action | None:
    for dependency in dependant.dependencies:
        found = getattr(dependency.call, "paved_action", None)
        if isinstance(found, Action):
            return found
        nested = _find_action(dependency)
        if nested is not None:
            return nested
    return None


def route_action(route: BaseRoute) -> Action | None:
    """The action a route declared with ``requires``, or None."""
    if isinstance(route, APIRoute):
        return _find_action(route.dependant)
    return None


def is_ungated(route: BaseRoute) -> bool:
    return getattr(route, "path", None) in UNGATED_PATHS

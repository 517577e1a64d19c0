"""Routes declare the action they perform; this is where that declaration lives."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from fastapi import Depends, Request
from fastapi.dependencies.models import Dependant
from fastapi.routing import RouteContext, iter_route_contexts
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


def walk_routes(routes: Sequence[BaseRoute]) -> Iterator[RouteContext]:
    """Every route as served, included routers flattened (with their prefixes and
    dependencies applied)."""
    yield from iter_route_contexts(routes)


def route_action(route: RouteContext) -> Action | None:
    """The action a route declared with ``requires``, or None."""
    dependant = getattr(route, "dependant", None)
    return _find_action(dependant) if isinstance(dependant, Dependant) else None


def is_ungated(route: RouteContext) -> bool:
    return route.path in UNGATED_PATHS

"""Routes declare the action they perform; this is where that declaration lives."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any, TypeVar

from fastapi import Depends, Request
from fastapi.dependencies.models import Dependant
from fastapi.routing import RouteContext, iter_route_contexts
from starlette.routing import BaseRoute, Mount

from portal.actions import Action

# The only routes that need no action: liveness, readiness, metrics scraping and static
# files. They are recognised by the mark ``ungated`` puts on the core's own endpoints (and
# the static mount), never by path, so no plugin route can join them.
ALLOWLIST = frozenset({"/healthz", "/readyz", "/metrics", "/static"})
STATIC_PATH = "/static"

Endpoint = TypeVar("Endpoint", bound=Callable[..., Any])


def ungated(endpoint: Endpoint) -> Endpoint:
    """Mark one of the core's operational endpoints as needing no action."""
    endpoint.paved_ungated = True  # type: ignore[attr-defined]
    return endpoint


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
    """On the allowlist: a core endpoint marked ``ungated``, or the static files mount."""
    if getattr(route.endpoint, "paved_ungated", False):
        return True
    original = route.original_route
    return isinstance(original, Mount) and original.path == STATIC_PATH

"""Hot paths, such as predictions: routers tried before every other route, whose reads the
fast lane (``portal.fastlane``) answers ahead of the framework.

FastAPI tries routes in the order they were added, and each route it tries before the one
that matches costs a few microseconds on every request: about 0.2 ms for the portal's
hundred routes. A plugin marks a router with ``hot_path``; the portal adds it before its
own routes, once it has made sure no other route can answer a request the marked router
takes, so the order changes nothing but the speed.
"""

from __future__ import annotations

from collections.abc import Iterable

from fastapi import APIRouter

HOT_PATH = "paved_hot_path"


def hot_path(router: APIRouter) -> APIRouter:
    """Mark ``router`` as a hot path; returns it.

    Its routes are tried before every other route, and those that read (an async endpoint
    taking only ``str`` path parameters and the request, gated by ``requires`` on a read
    action without a resource) are answered by the fast lane when the caller's API token
    and the decision are remembered. Each path of the router must begin with text no other
    route's path can match (for ``/serve/{name}/invocations``, ``/serve/``); the portal
    refuses the router otherwise.
    """
    setattr(router, HOT_PATH, True)
    return router


def is_hot_path(router: APIRouter) -> bool:
    return getattr(router, HOT_PATH, False) is True


def can_overlap(path: str, other: str) -> bool:
    """Whether some request path could match both route paths (``{...}`` are parameters).

    Decided on the text before each path's first parameter: a path without parameters
    matches only itself; one with parameters, only paths that begin with that text. It may
    say yes when no request matches both, never the other way.
    """
    prefix, other_prefix = _fixed(path), _fixed(other)
    if prefix == path and other_prefix == other:
        return path == other
    if prefix == path:
        return path.startswith(other_prefix)
    if other_prefix == other:
        return other.startswith(prefix)
    return prefix.startswith(other_prefix) or other_prefix.startswith(prefix)


def overlapping(paths: Iterable[str], others: Iterable[str]) -> list[tuple[str, str]]:
    """Each pair of a path of ``paths`` and one of ``others`` that ``can_overlap``."""
    others = list(others)
    return [(path, other) for path in paths for other in others if can_overlap(path, other)]


def _fixed(path: str) -> str:
    return path.split("{", 1)[0]

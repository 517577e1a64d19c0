"""Rendering a catalog page in the portal's shell: the whole page, or for an htmx swap only
the fragment that changes."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from starlette.responses import HTMLResponse

from portal.settings import Settings
from portal.shell import Shell


def shell_of(request: Request) -> Shell:
    shell: Shell = request.app.state.shell
    return shell


def settings_of(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def is_htmx(request: Request) -> bool:
    """An htmx swap: not the history restore, which wants the whole page."""
    return (
        request.headers.get("HX-Request") == "true"
        and request.headers.get("HX-History-Restore-Request") != "true"
    )


def render(
    request: Request,
    template: str,
    context: dict[str, Any],
    *,
    fragment: str,
    status_code: int = 200,
) -> HTMLResponse:
    """The page, or for an htmx swap only ``fragment`` (the shell would also hand the
    fragment to htmx's history restore, which replaces the whole page)."""
    htmx = is_htmx(request)
    response = shell_of(request).render(
        request,
        template,
        {**context, "is_htmx": htmx},
        fragment=fragment if htmx else None,
        status_code=status_code,
    )
    response.headers["Vary"] = "HX-Request"
    return response

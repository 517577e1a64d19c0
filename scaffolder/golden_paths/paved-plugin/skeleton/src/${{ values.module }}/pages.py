"""The plugin's page, rendered inside the portal's layout."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from portal import Identity, requires
from portal.db import SessionDep

from . import TITLE, actions, service

router = APIRouter()


@router.get("/${{ values.name }}")
def page(
    request: Request,
    session: SessionDep,
    user: Annotated[Identity, requires(actions.PAGE_READ)],
) -> HTMLResponse:
    components = service.team_components(session, user)
    return request.app.state.shell.render(
        request,
        "${{ values.area }}/page.html",
        {"title": TITLE, "components": components, "teams": user.groups},
    )

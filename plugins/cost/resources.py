"""What cost actions are about, as the policy sees it: a team (a Group of the catalog), its
own owner, so that only its members (and admins) change what is the team's."""

from __future__ import annotations

from fastapi import Request
from sqlmodel import Session

import catalog.service as catalog
from catalog.refs import parse_ref
from portal import InvalidInput, Resource
from portal.db import SessionDep

TEAM_FORM = "a Group's name, or its namespace and name: /budgets/fraud, /budgets/default/fraud"


def team_ref(session: Session, namespace: str, name: str) -> str:
    """The ref of the Group ``namespace/name``; raises NotFound when the catalog has none."""
    if not name or "/" in name or ":" in name:
        raise InvalidInput.for_field("team", f"{name!r} is not a team", TEAM_FORM)
    ref = parse_ref(f"group:{namespace}/{name}", field="team")
    return catalog.get_entity(session, ref).ref


def team_resource(team: str) -> Resource:
    return Resource(ref=team, kind="Group", owner=team)


async def team_from_path(request: Request, session: SessionDep) -> Resource:
    """The team of ``/api/cost/budgets/[{namespace}/]{team}`` (and its page forms)."""
    params = request.path_params
    request.state.team = team_ref(session, params.get("namespace", "default"), params["team"])
    return team_resource(request.state.team)

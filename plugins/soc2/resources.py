"""What SOC 2 actions are about, as the policy sees it: the team whose access is reviewed
(a Group of the catalog, its own owner)."""

from __future__ import annotations

from fastapi import Request

import catalog.service as catalog
from catalog.refs import parse_ref
from portal import InvalidInput, Resource
from portal.db import SessionDep


async def team_reviewed(request: Request, session: SessionDep) -> Resource:
    """The team of ``/api/soc2/reviews/{namespace}/{team}`` (and its page)."""
    namespace, name = request.path_params["namespace"], request.path_params["team"]
    if "/" in name or ":" in name:
        raise InvalidInput.for_field("team", f"{name!r} is not a team", "/reviews/default/fraud")
    ref = parse_ref(f"group:{namespace}/{name}", field="team")
    team = catalog.get_entity(session, ref).ref
    request.state.team = team
    return Resource(ref=team, kind="Group", owner=team)

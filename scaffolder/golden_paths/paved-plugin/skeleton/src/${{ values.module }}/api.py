"""The plugin's REST routes; each names its policy action."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter
from portal import Identity, requires
from portal.db import SessionDep
from pydantic import BaseModel, Field

from . import actions, service

router = APIRouter(prefix="/api/${{ values.name }}", tags=["${{ values.title }}"])


class ReviewIn(BaseModel):
    component: str = Field(description="The component's entity ref, e.g. component:default/x")
    note: str = Field("", max_length=2000, description="What the reviewers should look at")


class ReviewOut(BaseModel):
    task_id: int
    title: str


@router.get("/components")
def list_components(
    session: SessionDep, user: Annotated[Identity, requires(actions.PAGE_READ)]
) -> list[dict[str, Any]]:
    """The components your teams own."""
    return service.team_components(session, user)


@router.post("/reviews", status_code=202)
def request_review(
    body: ReviewIn,
    session: SessionDep,
    user: Annotated[Identity, requires(actions.REVIEW_REQUEST)],
) -> ReviewOut:
    """Ask for a review; it runs as a task whose log the portal shows."""
    task = service.request_review(session, body.component, body.note, by=user)
    return ReviewOut(task_id=task.id, title=task.title)

"""What the plugin does: the caller's teams' components, and review requests kept as
Paved tasks (persisted, retried, their log shown on the task page)."""

from __future__ import annotations

from typing import Any

from catalog import service as catalog
from catalog.refs import parse_ref
from portal import Identity, InvalidInput, PavedError, TaskContext, TaskHandler
from portal import tasks as portal_tasks
from portal.tasks import Task
from sqlmodel import Session

REVIEW_TASK = "${{ values.area }}.review"


def team_components(session: Session, identity: Identity) -> list[dict[str, Any]]:
    """The Components owned by the groups ``identity`` belongs to, by name."""
    teams = {team.lower() for team in identity.groups}
    return sorted(
        (
            {
                "ref": entity.ref,
                "name": entity.body["metadata"]["name"],
                "owner": entity.body["spec"].get("owner"),
                "lifecycle": entity.body["spec"].get("lifecycle"),
            }
            for entity in catalog.entities_of_kind(session, "Component")
            if _owner_key(entity.body["spec"].get("owner")) in teams
        ),
        key=lambda component: component["name"],
    )


def request_review(session: Session, component: str, note: str, *, by: Identity) -> Task:
    """Queue a review of ``component`` (an entity ref of one of the caller's components)."""
    owned = {found["ref"] for found in team_components(session, by)}
    if component.lower() not in owned:
        raise InvalidInput.for_field(
            "component", f"{component!r} is not a component of your teams", "a ref they own"
        )
    return portal_tasks.enqueue(
        session,
        REVIEW_TASK,
        title=f"Review {component}",
        params={"component": component, "note": note},
        created_by=by.ref,
    )


def run_review(context: TaskContext) -> dict[str, Any]:
    """The queued review: here it writes the checklist to the task's log."""
    component = context.params["component"]
    context.log(f"review of {component} requested: {context.params.get('note') or 'no note'}")
    for item in ("tests pass", "model card filled in", "owner on call"):
        context.log(f"check: {item}")
    return {"component": component, "checks": 3}


REVIEW = TaskHandler(REVIEW_TASK, run_review, title="Review a component")


def _owner_key(owner: object) -> str | None:
    """A Component's owner as a lower-cased ref (``fraud`` means ``group:default/fraud``)."""
    try:
        return parse_ref(owner, default_kind="group").key  # type: ignore[arg-type]
    except PavedError:
        return None

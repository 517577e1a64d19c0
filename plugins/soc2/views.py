"""Shapes of SOC 2 answers shared by the API and the pages."""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlmodel import Session

from plugins.soc2 import service
from plugins.soc2.controls import CONTROLS, STATUS_TEXT
from plugins.soc2.models import EvidenceExport, ExportOut, ReviewMemberOut, ReviewOut
from plugins.soc2.service.reviews import Quarter
from portal.db import utcnow
from portal.evidence import EvidenceCollector


def export_out(export: EvidenceExport) -> ExportOut:
    assert export.id is not None
    download = f"/api/soc2/exports/{export.id}/download" if export.status == "succeeded" else None
    return ExportOut(
        id=export.id,
        start=export.start,
        end=export.end,
        status=export.status,
        task_id=export.task_id,
        requested_by=export.requested_by,
        requested_at=export.requested_at,
        finished_at=export.finished_at,
        file_name=export.file_name,
        bytes=export.bytes,
        sha256=export.sha256,
        manifest_sha256=export.manifest_sha256,
        events=export.events,
        controls=export.controls,
        error=export.error,
        download=download,
    )


def controls_map(
    collectors: list[EvidenceCollector], latest: EvidenceExport | None
) -> list[dict[str, Any]]:
    """Each control, what shows it, and its status in the latest pack."""
    shown = []
    for control in CONTROLS:
        status = latest.controls.get(control.id) if latest else None
        shown.append(
            {
                "id": control.id,
                "title": control.title,
                "criterion": control.criterion,
                "shown_by": control.shown_by,
                "status": status,
                "status_text": STATUS_TEXT.get(status or "", "Not exported yet"),
                "evidence": [
                    {"name": c.name, "title": c.title, "description": c.description}
                    for c in collectors
                    if control.id in c.controls
                ],
            }
        )
    return shown


def review_out(session: Session, team: str, quarter: Quarter) -> ReviewOut:
    review = service.get_review(session, team, quarter)
    decided = {m["member"]: m for m in review.members} if review else {}
    members = [
        ReviewMemberOut(
            member=member.ref,
            name=member.name,
            roles=member.roles,
            last_seen=member.last_seen,
            tokens=member.tokens,
            decision=decided.get(member.ref, {}).get("decision"),
            note=decided.get(member.ref, {}).get("note") or "",
        )
        for member in service.team_members(session, team)
    ]
    # Members who left the team since the review still show, as they were attested.
    for ref, attested in decided.items():
        if all(m.member != ref for m in members):
            members.append(
                ReviewMemberOut(
                    member=ref,
                    name=attested.get("name") or ref,
                    roles=attested.get("roles") or [],
                    last_seen=None,
                    tokens=attested.get("tokens") or 0,
                    decision=attested["decision"],
                    note=attested.get("note") or "",
                )
            )
    today: date = utcnow().date()
    return ReviewOut(
        team=team,
        quarter=quarter.label,
        due=quarter.end,
        status=service.review_status(review, quarter, today),
        reviewer=review.reviewer if review else None,
        submitted_at=review.submitted_at if review else None,
        note=review.note if review else "",
        members=members,
    )

"""The SOC 2 REST API under ``/api/soc2``: the controls map, live evidence, signed
evidence packs (export, list, download), the public key that verifies them, and
quarterly access reviews."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Body, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse

from plugins.soc2 import actions, service
from plugins.soc2.models import ExportIn, ExportOut, ReviewIn, ReviewOut
from plugins.soc2.resources import team_reviewed
from plugins.soc2.service.reviews import Quarter
from plugins.soc2.signing import public_pem, signing_key
from plugins.soc2.views import controls_map, export_out, review_out
from portal import Identity, requires
from portal.db import SessionDep, utcnow

router = APIRouter(prefix="/api/soc2", tags=["soc2"])
ZIP_RESPONSE: dict[int | str, dict[str, Any]] = {
    200: {"content": {"application/zip": {"schema": {"type": "string", "format": "binary"}}}}
}
PEM_RESPONSE: dict[int | str, dict[str, Any]] = {
    200: {"content": {"application/x-pem-file": {"schema": {"type": "string"}}}}
}


@router.get("/controls", dependencies=[requires(actions.EVIDENCE_READ)])
def list_controls(request: Request, session: SessionDep) -> list[dict[str, Any]]:
    """Each SOC 2 control, the evidence that shows it, and its status in the latest pack."""
    collectors = service.list_collectors(request.app.state.plugins, request.app.state.settings)
    latest = service.latest_pack(session)
    return controls_map(collectors, latest)


@router.get("/evidence/{name}", dependencies=[requires(actions.EVIDENCE_READ)])
async def read_evidence(
    request: Request,
    name: str,
    start: Annotated[date | None, Query(alias="from", description="First day")] = None,
    end: Annotated[date | None, Query(alias="to", description="Last day, included")] = None,
) -> dict[str, Any]:
    """One collector's evidence for a period, gathered now (default: this quarter)."""
    quarter = Quarter.of(utcnow().date())
    return await run_in_threadpool(
        service.live_evidence,
        request.app.state.plugins,
        request.app.state.engine,
        request.app.state.settings,
        name,
        start or quarter.start,
        end or utcnow().date(),
    )


@router.post("/exports", status_code=202)
def create_export(
    request: Request,
    session: SessionDep,
    user: Annotated[Identity, requires(actions.EVIDENCE_EXPORT)],
    asked: Annotated[ExportIn, Body()],
) -> ExportOut:
    """Export the evidence of a period as a signed pack (a task, ``task_id``); download it
    from ``download`` once the export has succeeded."""
    export = service.request_export(
        session, asked.start, asked.end, request.app.state.settings, by=user
    )
    return export_out(export)


@router.get("/exports", dependencies=[requires(actions.EVIDENCE_READ)])
def list_exports(session: SessionDep) -> list[ExportOut]:
    """The latest evidence exports, newest first."""
    return [export_out(export) for export in service.list_exports(session)]


@router.get("/exports/{export_id}", dependencies=[requires(actions.EVIDENCE_READ)])
def get_export(export_id: int, session: SessionDep) -> ExportOut:
    return export_out(service.get_export(session, export_id))


@router.get("/exports/{export_id}/download", responses=ZIP_RESPONSE)
def download_export(
    export_id: int,
    request: Request,
    session: SessionDep,
    user: Annotated[Identity, requires(actions.EVIDENCE_READ)],
) -> FileResponse:
    """The pack's zip, once checked to be the file the export wrote (downloads are
    audited)."""
    export, path = service.open_pack(session, export_id, request.app.state.settings, by=user)
    return FileResponse(path, media_type="application/zip", filename=export.file_name)


@router.get("/public-key", dependencies=[requires(actions.EVIDENCE_READ)], responses=PEM_RESPONSE)
def public_key(request: Request) -> Response:
    """The Ed25519 public key (PEM) that verifies this portal's evidence packs:
    ``paved evidence verify pack.zip --public-key key.pem``."""
    key = signing_key(request.app.state.settings).public_key()
    return Response(
        public_pem(key),
        media_type="application/x-pem-file",
        headers={"Content-Disposition": 'attachment; filename="paved-evidence-key.pem"'},
    )


@router.get("/reviews", dependencies=[requires(actions.REVIEW_READ)])
def list_reviews(
    session: SessionDep,
    quarter: Annotated[str | None, Query(description="2026-Q4; default: this quarter")] = None,
) -> list[dict[str, Any]]:
    """Each team's access review for a quarter: due, done or overdue."""
    chosen = Quarter.parse(quarter) if quarter else Quarter.of(utcnow().date())
    return service.list_reviews(session, chosen)


@router.get(
    "/reviews/{namespace}/{team}",
    dependencies=[requires(actions.REVIEW_READ, resource=team_reviewed)],
)
def get_review(
    request: Request,
    session: SessionDep,
    quarter: Annotated[str | None, Query(description="2026-Q4; default: this quarter")] = None,
) -> ReviewOut:
    """The team's members, their access, and the lead's decisions once reviewed."""
    chosen = Quarter.parse(quarter) if quarter else Quarter.of(utcnow().date())
    return review_out(session, request.state.team, chosen)


@router.post("/reviews/{namespace}/{team}", status_code=201)
def submit_review(
    request: Request,
    session: SessionDep,
    user: Annotated[Identity, requires(actions.REVIEW_SUBMIT, resource=team_reviewed)],
    asked: Annotated[ReviewIn, Body()],
) -> ReviewOut:
    """Attest, as the team's lead, every member's access for this quarter: keep or remove
    each one. A quarter is reviewed once."""
    review = service.submit_review(
        session, request.state.team, asked.members, note=asked.note, by=user
    )
    return review_out(session, request.state.team, Quarter.parse(review.quarter))

"""The PII REST API under ``/api/pii``: ask for a scan of a dataset or of an uploaded sample
(a task; follow it by ``task_id``), read scans, and read a dataset's latest result."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, File, Form, Query, Request, UploadFile

from plugins.pii import actions, service
from plugins.pii.models import ScanIn, ScanOut
from plugins.pii.resources import sample_uploaded, scan_asked
from portal import Identity, requires
from portal.db import SessionDep

router = APIRouter(prefix="/api/pii", tags=["pii"])


@router.post("/scans", status_code=202)
def create_scan(
    request: Request,
    session: SessionDep,
    user: Annotated[Identity, requires(actions.SCAN_RUN, resource=scan_asked)],
    asked: Annotated[ScanIn, Body()],
) -> ScanOut:
    """Scan a Dataset's files (CSV or Parquet at its ``spec.location``): a sample of rows,
    each column's values run through Presidio's recognizers. Returns the scan; its task
    (``task_id``) does the work."""
    scan = service.start_scan(
        session, request.state.dataset, by=user, settings=request.app.state.settings
    )
    return service.shown(scan)


@router.post("/samples", status_code=202)
async def upload_sample(
    request: Request,
    session: SessionDep,
    user: Annotated[Identity, requires(actions.SCAN_RUN, resource=sample_uploaded)],
    file: Annotated[UploadFile, File(description="A CSV or Parquet file")],
    dataset: Annotated[str | None, Form(description="The Dataset it is a sample of")] = None,
) -> ScanOut:
    """Scan an uploaded sample (CSV or Parquet). It is deleted once scanned; only masked
    examples are kept."""
    settings = request.app.state.settings
    content = await file.read(settings.pii.max_upload_bytes + 1)
    scan = service.start_upload_scan(
        session,
        file.filename or "",
        content,
        entity=request.state.dataset,
        by=user,
        settings=settings,
    )
    return service.shown(scan)


@router.get("/scans", dependencies=[requires(actions.SCAN_READ)])
def list_scans(
    session: SessionDep,
    dataset: Annotated[str | None, Query(description="Only this Dataset's")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> list[ScanOut]:
    """The latest scans, newest first."""
    return [
        service.shown(scan) for scan in service.list_scans(session, dataset=dataset, limit=limit)
    ]


@router.get("/scans/{scan_id}", dependencies=[requires(actions.SCAN_READ)])
def get_scan(scan_id: int, session: SessionDep) -> ScanOut:
    """A scan: its status, and once completed its findings per column."""
    return service.shown(service.get_scan(session, scan_id))


@router.get("/datasets/{kind}/{namespace}/{name}", dependencies=[requires(actions.SCAN_READ)])
def latest_for_dataset(kind: str, namespace: str, name: str, session: SessionDep) -> ScanOut:
    """The dataset's latest completed scan (a failed one since does not hide it)."""
    return service.shown(service.latest_for(session, f"{kind}:{namespace}/{name}"))

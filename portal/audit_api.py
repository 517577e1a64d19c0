"""The audit log over HTTP: filtered, cursor-paged JSON, a CSV or JSON export, and a page."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from datetime import datetime
from typing import Annotated, Literal
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel
from sqlalchemy.engine import Engine
from sqlmodel import Session
from starlette.responses import HTMLResponse, StreamingResponse

from portal import actions, audit
from portal.db import SessionDep, as_utc
from portal.gate import requires
from portal.models import AuditEventOut
from portal.shell import Shell

router = APIRouter(tags=["audit"])
EXPORT_COLUMNS = (*audit.HASHED_FIELDS, "hash")


class AuditQuery(BaseModel):
    """Filters shared by the list, the export and the page; empty means any."""

    actor: str | None = None
    action: str | None = None
    resource: str | None = None
    outcome: Literal["succeeded", "failed", "denied"] | None = None
    since: datetime | None = None
    until: datetime | None = None

    def to_filter(self) -> audit.AuditFilter:
        return audit.AuditFilter(
            actor=self.actor or None,
            action=self.action or None,
            resource=self.resource or None,
            outcome=self.outcome,
            since=as_utc(self.since) if self.since else None,
            until=as_utc(self.until) if self.until else None,
        )

    def query_string(self, **extra: object) -> str:
        given = {k: v for k, v in self.model_dump(mode="json").items() if v}
        return urlencode({**given, **{k: v for k, v in extra.items() if v is not None}})


def _audit_query(
    actor: Annotated[str | None, Query(description="Exact actor ref.")] = None,
    action: Annotated[str | None, Query(description="Exact action name.")] = None,
    resource: Annotated[str | None, Query(description="Exact resource ref.")] = None,
    outcome: Annotated[Literal["succeeded", "failed", "denied", ""] | None, Query()] = None,
    since: Annotated[datetime | None, Query(description="From this moment (UTC).")] = None,
    until: Annotated[datetime | None, Query(description="Before this moment (UTC).")] = None,
) -> AuditQuery:
    return AuditQuery(
        actor=actor,
        action=action,
        resource=resource,
        outcome=outcome or None,
        since=since,
        until=until,
    )


QueryDep = Annotated[AuditQuery, Depends(_audit_query)]


class AuditEventsOut(BaseModel):
    events: list[AuditEventOut]
    next: str | None  # the URL of the next (older) page, or None on the last one


@router.get("/api/audit/events", dependencies=[requires(actions.AUDIT_READ)])
def list_audit_events(
    session: SessionDep,
    where: QueryDep,
    before: Annotated[
        int | None, Query(ge=1, description="Cursor: events older than this id.")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> AuditEventsOut:
    """Audit events, newest first, ``limit`` at a time; follow ``next`` for older ones."""
    page = audit.list_events(session, where.to_filter(), before=before, limit=limit)
    after = where.query_string(before=page.next_cursor, limit=limit)
    return AuditEventsOut(
        events=[AuditEventOut.model_validate(event) for event in page.events],
        next=f"/api/audit/events?{after}" if page.next_cursor else None,
    )


@router.get("/api/audit/export", dependencies=[requires(actions.AUDIT_READ)])
def export_audit_events(
    request: Request,
    where: QueryDep,
    format: Annotated[Literal["csv", "json"], Query(description="csv or json")] = "csv",
) -> StreamingResponse:
    """Every matching event, oldest last, streamed as CSV or a JSON array."""
    engine: Engine = request.app.state.engine
    rows = _all_matching(engine, where.to_filter())
    body = _as_csv(rows) if format == "csv" else _as_json(rows)
    media = "text/csv" if format == "csv" else "application/json"
    return StreamingResponse(
        body,
        media_type=f"{media}; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="paved-audit.{format}"'},
    )


def _all_matching(engine: Engine, where: audit.AuditFilter) -> Iterator[AuditEventOut]:
    before = None
    while True:
        with Session(engine) as session:
            page = audit.list_events(session, where, before=before, limit=1000)
            events = [AuditEventOut.model_validate(event) for event in page.events]
        yield from events
        if page.next_cursor is None:
            return
        before = page.next_cursor


def _as_csv(rows: Iterator[AuditEventOut]) -> Iterator[str]:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(EXPORT_COLUMNS)
    for row in rows:
        data = row.model_dump(mode="json")
        writer.writerow(
            [
                json.dumps(data[c]) if isinstance(data[c], list | dict) else data[c]
                for c in EXPORT_COLUMNS
            ]
        )
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
    yield buffer.getvalue()


def _as_json(rows: Iterator[AuditEventOut]) -> Iterator[str]:
    yield "["
    for number, row in enumerate(rows):
        yield ("," if number else "") + row.model_dump_json()
    yield "]\n"


@router.get("/audit", dependencies=[requires(actions.AUDIT_READ)], include_in_schema=False)
def audit_page(
    request: Request,
    session: SessionDep,
    where: QueryDep,
    before: Annotated[int | None, Query(ge=1)] = None,
) -> HTMLResponse:
    page = audit.list_events(session, where.to_filter(), before=before, limit=50)
    shell: Shell = request.app.state.shell
    context = {
        "page": page,
        "where": where,
        "before": before,
        "outcomes": audit.OUTCOMES,
        "older": f"/audit?{where.query_string(before=page.next_cursor)}"
        if page.next_cursor
        else None,
        "export": where.query_string(),
    }
    return shell.render(request, "audit/list.html", context)

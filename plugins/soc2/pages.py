"""The auditor's pages (the controls map, live evidence, packs to export and download)
and the quarterly access reviews team leads fill in."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Form, Query, Request
from fastapi.concurrency import run_in_threadpool
from starlette.responses import HTMLResponse, RedirectResponse

from catalog.pages import entity_url
from plugins.soc2 import actions, service
from plugins.soc2.controls import STATUS_TEXT
from plugins.soc2.models import MemberDecision
from plugins.soc2.resources import team_reviewed
from plugins.soc2.service.reviews import Quarter
from plugins.soc2.views import controls_map, export_out, review_out
from portal import Identity, InvalidInput, requires
from portal.db import SessionDep, utcnow
from portal.shell import Shell

router = APIRouter(include_in_schema=False)
ROWS_SHOWN = 500


def _shell(request: Request) -> Shell:
    shell: Shell = request.app.state.shell
    return shell


@router.get("/soc2", dependencies=[requires(actions.EVIDENCE_READ)])
def evidence_page(request: Request, session: SessionDep) -> HTMLResponse:
    """The controls, the evidence that shows each and its status, and the packs."""
    collectors = service.list_collectors(request.app.state.plugins, request.app.state.settings)
    exports = service.list_exports(session)
    latest = service.latest_pack(session)
    today = utcnow().date()
    quarter = Quarter.of(today)
    context: dict[str, Any] = {
        "controls": controls_map(collectors, latest),
        "latest": export_out(latest) if latest else None,
        "exports": [export_out(export) for export in exports],
        "quarter": quarter,
        "previous": quarter.previous(),
        "today": today,
    }
    return _shell(request).render(request, "soc2/page.html", context)


@router.get("/soc2/exports", dependencies=[requires(actions.EVIDENCE_READ)])
def exports_partial(request: Request, session: SessionDep) -> HTMLResponse:
    """The packs' list, which the Evidence page reloads while an export runs."""
    context = {"exports": [export_out(export) for export in service.list_exports(session)]}
    return _shell(request).render(request, "soc2/_exports.html", context)


@router.get("/soc2/evidence/{name}", dependencies=[requires(actions.EVIDENCE_READ)])
async def evidence_detail(
    request: Request,
    name: str,
    start: Annotated[date | None, Query(alias="from")] = None,
    end: Annotated[date | None, Query(alias="to")] = None,
) -> HTMLResponse:
    """One collector's evidence, gathered now for a period (default: this quarter)."""
    today = utcnow().date()
    start = start or Quarter.of(today).start
    end = end or today
    document = await run_in_threadpool(
        service.live_evidence,
        request.app.state.plugins,
        request.app.state.engine,
        request.app.state.settings,
        name,
        start,
        end,
    )
    context = {
        "evidence": document,
        "start": start,
        "end": end,
        "rows_shown": ROWS_SHOWN,
        "status_text": STATUS_TEXT,
    }
    return _shell(request).render(request, "soc2/evidence.html", context)


@router.post("/soc2/exports")
def export_from_page(
    request: Request,
    session: SessionDep,
    user: Annotated[Identity, requires(actions.EVIDENCE_EXPORT)],
    start: Annotated[date, Form(alias="from")],
    end: Annotated[date, Form(alias="to")],
) -> RedirectResponse:
    """The Export form: the Evidence page follows the export until its pack is ready."""
    export = service.request_export(session, start, end, request.app.state.settings, by=user)
    return RedirectResponse(f"/soc2#export-{export.id}", 303)


@router.get("/soc2/reviews", dependencies=[requires(actions.REVIEW_READ)])
def reviews_page(
    request: Request,
    session: SessionDep,
    quarter: Annotated[str | None, Query()] = None,
) -> HTMLResponse:
    """Every team's access review of a quarter."""
    chosen = Quarter.parse(quarter) if quarter else Quarter.of(utcnow().date())
    context = {
        "quarter": chosen,
        "reviews": service.list_reviews(session, chosen),
        "entity_url": entity_url,
    }
    return _shell(request).render(request, "soc2/reviews.html", context)


@router.get(
    "/soc2/reviews/{namespace}/{team}",
    dependencies=[requires(actions.REVIEW_READ, resource=team_reviewed)],
)
def review_page(
    namespace: str,
    team: str,
    request: Request,
    session: SessionDep,
    quarter: Annotated[str | None, Query()] = None,
) -> HTMLResponse:
    """A team's review: the members and their access, and the lead's form or decisions."""
    chosen = Quarter.parse(quarter) if quarter else Quarter.of(utcnow().date())
    context = {
        "review": review_out(session, request.state.team, chosen),
        "is_current": chosen == Quarter.of(utcnow().date()),
        "action": f"/soc2/reviews/{namespace}/{team}",
        "entity_url": entity_url,
    }
    return _shell(request).render(request, "soc2/review.html", context)


@router.post("/soc2/reviews/{namespace}/{team}")
async def review_from_page(
    namespace: str,
    team: str,
    request: Request,
    session: SessionDep,
    user: Annotated[Identity, requires(actions.REVIEW_SUBMIT, resource=team_reviewed)],
) -> RedirectResponse:
    """The review form: one keep or remove per member, with an optional note each."""
    form = await request.form()
    decisions = []
    for key, value in form.multi_items():
        if not key.startswith("decision:"):
            continue
        member = key.removeprefix("decision:")
        if value not in ("keep", "remove"):
            raise InvalidInput.for_field(f"decision:{member}", f"{value!r}", "keep or remove")
        note = str(form.get(f"note:{member}") or "")
        decisions.append(MemberDecision(member=member, decision=str(value), note=note))
    service.submit_review(
        session, request.state.team, decisions, note=str(form.get("note") or ""), by=user
    )
    return RedirectResponse(f"/soc2/reviews/{namespace}/{team}", 303)

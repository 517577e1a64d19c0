"""The cost pages: the Cost page (every team's cost over time, the budgets, the usage
sources) and the Cost tab of Group pages (the team's chart, budget, alerts and override)."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Query, Request
from starlette.responses import HTMLResponse, RedirectResponse

from catalog.pages import entity_url
from plugins.cost import actions, service
from plugins.cost.models import Granularity, GroupBy
from plugins.cost.resources import team_from_path
from plugins.cost.views import report_query, sources_out
from portal import Identity, requires
from portal.db import SessionDep, utcnow
from portal.shell import Shell

router = APIRouter(include_in_schema=False)
TAB = "cost"
TAB_DAYS = 90
REPORT_API = "/api/cost/report"


def _shell(request: Request) -> Shell:
    shell: Shell = request.app.state.shell
    return shell


def _tab_of(team: str) -> str:
    return f"{entity_url(team)}?tab={TAB}"


@router.get("/cost", dependencies=[requires(actions.REPORT_READ)])
def cost_page(
    request: Request,
    session: SessionDep,
    group_by: Annotated[GroupBy, Query()] = "team",
    start: Annotated[date | None, Query(alias="from")] = None,
    end: Annotated[date | None, Query(alias="to")] = None,
    granularity: Annotated[Granularity, Query()] = "day",
) -> HTMLResponse:
    """Every team's (project's, model's) cost over time, the budgets and the sources."""
    report = report_query(
        session, request, group_by=group_by, start=start, end=end, granularity=granularity
    )
    query = {
        "group_by": report.group_by,
        "from": report.start.isoformat(),
        "to": report.end.isoformat(),
        "granularity": report.granularity,
    }
    context: dict[str, Any] = {
        "report": report,
        "query": query,
        "report_url": f"{REPORT_API}?{urlencode(query)}",
        "csv_url": f"{REPORT_API}?{urlencode({**query, 'format': 'csv'})}",
        "budgets": service.list_budgets(session, request.app.state.settings),
        "sources": sources_out(session, request),
        "today": utcnow().date(),
        "entity_url": entity_url,
    }
    return _shell(request).render(request, "cost/page.html", context)


@router.get(
    "/cost/tabs/{kind}/{namespace}/{team}",
    dependencies=[requires(actions.REPORT_READ, resource=team_from_path)],
)
def team_tab(
    kind: str, namespace: str, team: str, request: Request, session: SessionDep
) -> HTMLResponse:
    """A team's Cost tab: its cost per day by project over the last days, its budget."""
    ref = request.state.team
    end = utcnow().date()
    start = end - timedelta(days=TAB_DAYS - 1)
    report = report_query(session, request, group_by="project", start=start, end=end, team=ref)
    query = {"group_by": "project", "from": start.isoformat(), "to": end.isoformat(), "team": ref}
    context: dict[str, Any] = {
        "team": ref,
        "report": report,
        "days": TAB_DAYS,
        "report_url": f"{REPORT_API}?{urlencode(query)}",
        "csv_url": f"{REPORT_API}?{urlencode({**query, 'format': 'csv'})}",
        "budget": service.get_budget(session, ref, request.app.state.settings),
        "namespace": namespace,
        "name": team,
        "back": _tab_of(ref),
        "entity_url": entity_url,
    }
    return _shell(request).render(request, "cost/tab.html", context)


@router.post("/cost/budgets/{namespace}/{team}")
def budget_from_page(
    request: Request,
    session: SessionDep,
    user: Annotated[Identity, requires(actions.BUDGET_UPDATE, resource=team_from_path)],
    amount: Annotated[str, Form()] = "",
    month: Annotated[str, Form()] = "",
) -> RedirectResponse:
    """The budget form of the Cost tab: an empty amount removes the budget."""
    service.set_budget(
        session,
        request.state.team,
        service.amount_from_form(amount),
        month=service.month_from_form(month),
        by=user,
        settings=request.app.state.settings,
    )
    return RedirectResponse(_tab_of(request.state.team), 303)


@router.post("/cost/overrides/{namespace}/{team}")
def override_from_page(
    request: Request,
    session: SessionDep,
    user: Annotated[Identity, requires(actions.BUDGET_OVERRIDE, resource=team_from_path)],
    reason: Annotated[str, Form()] = "",
) -> RedirectResponse:
    """The Override button: the team trains past its budget for the rest of the month."""
    service.override_budget(session, request.state.team, reason, by=user)
    return RedirectResponse(_tab_of(request.state.team), 303)


@router.post("/cost/collections")
def collect_from_page(
    session: SessionDep,
    user: Annotated[Identity, requires(actions.USAGE_COLLECT)],
    start: Annotated[date, Form(alias="from")],
    end: Annotated[date, Form(alias="to")],
) -> RedirectResponse:
    """The Collect button of the Cost page: the task's page shows its log live."""
    task = service.start_collection(session, start, end, by=user.ref)
    return RedirectResponse(f"/tasks/{task.id}", 303)

"""The cost REST API under ``/api/cost``: reports (JSON, or CSV with ``Accept: text/csv``),
budgets per team and month, a team lead's override, and the usage sources."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Query, Request, Response
from sqlmodel import Session

from plugins.cost import actions, service
from plugins.cost.models import (
    BudgetIn,
    BudgetOut,
    CollectIn,
    Granularity,
    GroupBy,
    OverrideIn,
    OverrideOut,
    ReportOut,
    SourceOut,
)
from plugins.cost.resources import team_from_path
from plugins.cost.views import budget_out, report_out, report_query, sources_out
from portal import Identity, requires
from portal.db import SessionDep
from portal.models import TaskOut

router = APIRouter(prefix="/api/cost", tags=["cost"])
CSV_RESPONSE: dict[int | str, dict[str, Any]] = {
    200: {"content": {"text/csv": {"schema": {"type": "string"}}}}
}


@router.get("/report", dependencies=[requires(actions.REPORT_READ)], responses=CSV_RESPONSE)
def get_report(
    request: Request,
    session: SessionDep,
    group_by: Annotated[GroupBy, Query(description="What to add costs up by")] = "team",
    start: Annotated[
        date | None, Query(alias="from", description="First day; default: the 1st of this month")
    ] = None,
    end: Annotated[
        date | None, Query(alias="to", description="Last day, included; default: today")
    ] = None,
    granularity: Annotated[Granularity, Query(description="One figure per day or month")] = "day",
    team: Annotated[
        str | None, Query(description="Only this team's usage (group:<namespace>/<name>)")
    ] = None,
    format: Annotated[
        Literal["json", "csv"] | None, Query(description="csv: as Accept: text/csv does")
    ] = None,
) -> ReportOut:
    """What usage cost, per period and group, with the usage behind it. Send
    ``Accept: text/csv`` for one CSV line per period, group and metric."""
    report = report_query(
        session,
        request,
        group_by=group_by,
        start=start,
        end=end,
        granularity=granularity,
        team=team,
    )
    if format == "csv" or (format is None and "text/csv" in request.headers.get("accept", "")):
        filename = f"cost-{report.group_by}-{report.start}-{report.end}.csv"
        return Response(  # type: ignore[return-value]
            service.as_csv(report),
            media_type="text/csv",
            headers={"Content-Disposition": f'attachment; filename="{filename}"'},
        )
    return report_out(report)


@router.get("/sources", dependencies=[requires(actions.REPORT_READ)])
def list_sources(request: Request, session: SessionDep) -> list[SourceOut]:
    """Where usage comes from, and what each source last reported (or why it failed)."""
    return sources_out(session, request)


@router.post("/collections", status_code=202)
def collect(
    session: SessionDep,
    user: Annotated[Identity, requires(actions.USAGE_COLLECT)],
    asked: Annotated[CollectIn, Body()],
) -> TaskOut:
    """Read every source's usage of a range of days again (a task): it replaces what each
    source reported for those days."""
    task = service.start_collection(session, asked.start, asked.end, by=user.ref)
    return TaskOut.model_validate(task)


@router.get("/budgets", dependencies=[requires(actions.REPORT_READ)])
def list_budgets(request: Request, session: SessionDep) -> list[BudgetOut]:
    """Every team with a budget, and where this month stands against it."""
    settings = request.app.state.settings
    return [budget_out(view) for view in service.list_budgets(session, settings)]


def _budget(session: Session, request: Request) -> BudgetOut:
    view = service.get_budget(session, request.state.team, request.app.state.settings)
    return budget_out(view)


def _set_budget(session: Session, request: Request, asked: BudgetIn, user: Identity) -> BudgetOut:
    view = service.set_budget(
        session,
        request.state.team,
        asked.amount,
        month=asked.month,
        by=user,
        settings=request.app.state.settings,
    )
    return budget_out(view)


@router.get(
    "/budgets/{team}", dependencies=[requires(actions.REPORT_READ, resource=team_from_path)]
)
def get_budget(team: str, request: Request, session: SessionDep) -> BudgetOut:
    """A team's budgets (every month's and single months'), and this month against its
    budget: spent, percent, alerts raised and any override."""
    return _budget(session, request)


@router.put("/budgets/{team}")
def put_budget(
    team: str,
    request: Request,
    session: SessionDep,
    user: Annotated[Identity, requires(actions.BUDGET_UPDATE, resource=team_from_path)],
    asked: Annotated[BudgetIn, Body()],
) -> BudgetOut:
    """Set a team's budget for every month, or for one (``month``); ``amount: null``
    removes it. Alerts the new budget is already past are raised at once."""
    return _set_budget(session, request, asked, user)


@router.get(
    "/budgets/{namespace}/{team}",
    dependencies=[requires(actions.REPORT_READ, resource=team_from_path)],
)
def get_namespaced_budget(
    namespace: str, team: str, request: Request, session: SessionDep
) -> BudgetOut:
    """As ``GET /budgets/{team}``, for a team outside the default namespace."""
    return _budget(session, request)


@router.put("/budgets/{namespace}/{team}")
def put_namespaced_budget(
    namespace: str,
    team: str,
    request: Request,
    session: SessionDep,
    user: Annotated[Identity, requires(actions.BUDGET_UPDATE, resource=team_from_path)],
    asked: Annotated[BudgetIn, Body()],
) -> BudgetOut:
    """As ``PUT /budgets/{team}``, for a team outside the default namespace."""
    return _set_budget(session, request, asked, user)


@router.post("/overrides/{team}", status_code=201)
def override_budget(
    team: str,
    request: Request,
    session: SessionDep,
    user: Annotated[Identity, requires(actions.BUDGET_OVERRIDE, resource=team_from_path)],
    asked: Annotated[OverrideIn, Body()],
) -> OverrideOut:
    """Let the team train past its budget for the rest of this month (a team lead's call,
    with the reason kept in the audit log)."""
    override = service.override_budget(session, request.state.team, asked.reason, by=user)
    return OverrideOut.model_validate(override, from_attributes=True)

"""How the API and the pages show cost: reports asked for with the defaults people expect
(this month, by team), budgets and sources in their API shapes."""

from __future__ import annotations

from datetime import date

from fastapi import Request
from sqlmodel import Session

from catalog.refs import parse_ref
from plugins.cost import service
from plugins.cost.models import (
    AlertOut,
    BudgetOut,
    Granularity,
    GroupBy,
    OverrideOut,
    ReportOut,
    SeriesOut,
    SourceOut,
)
from portal.db import utcnow
from portal.usage import METRICS, UsageSource


def sources_of(request: Request) -> dict[str, UsageSource]:
    return service.available_sources(request.app.state.plugins, request.app.state.settings)


def units_of(sources: dict[str, UsageSource]) -> dict[str, str]:
    units = dict(METRICS)
    for source in sources.values():
        units.update(source.metrics)
    return units


def report_query(
    session: Session,
    request: Request,
    *,
    group_by: GroupBy = "team",
    start: date | None = None,
    end: date | None = None,
    granularity: Granularity = "day",
    team: str | None = None,
) -> service.Report:
    """The report asked for; without dates, this month to today."""
    today = utcnow().date()
    end = end or today
    start = start or end.replace(day=1)
    teams = [parse_ref(team, default_kind="group", field="team").key] if team else None
    sources = sources_of(request)
    states = service.source_states(session)
    read = [states[name].collected_through if name in states else None for name in sources]
    known = [day for day in read if day is not None]
    through = min(known) if known and len(known) == len(read) else None
    return service.build_report(
        session,
        start=start,
        end=end,
        group_by=group_by,
        granularity=granularity,
        settings=request.app.state.settings,
        units=units_of(sources),
        collected_through=through,
        teams=teams,
    )


def report_out(report: service.Report) -> ReportOut:
    return ReportOut(
        start=report.start,
        end=report.end,
        group_by=report.group_by,
        granularity=report.granularity,
        currency=report.currency,
        periods=report.periods,
        series=[SeriesOut(**vars(series)) for series in report.series],
        total=report.total,
        prices=report.prices,
        units=report.units,
        collected_through=report.collected_through,
    )


def budget_out(view: service.BudgetView) -> BudgetOut:
    override = view.override
    return BudgetOut(
        team=view.team,
        currency=view.currency,
        every_month=view.every_month,
        months=view.months,
        month=view.month,
        amount=view.amount,
        spent=view.spent,
        percent=view.percent,
        status=view.status,
        alerts=[AlertOut.model_validate(alert, from_attributes=True) for alert in view.alerts],
        override=OverrideOut.model_validate(override, from_attributes=True) if override else None,
    )


def sources_out(session: Session, request: Request) -> list[SourceOut]:
    states = service.source_states(session)
    shown = []
    for name, source in sources_of(request).items():
        state = states.get(name)
        shown.append(
            SourceOut(
                name=name,
                description=source.description,
                metrics=source.metrics,
                collected_from=state.collected_from if state else None,
                collected_through=state.collected_through if state else None,
                collected_at=state.collected_at if state else None,
                rows=state.rows if state else 0,
                error=state.error if state else None,
            )
        )
    return shown

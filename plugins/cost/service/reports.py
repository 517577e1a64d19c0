"""Cost reports: usage priced with the price sheet, by team, project or model, per day or
month, as JSON for pages and charts or as CSV for spreadsheets."""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, timedelta

from sqlalchemy import func, select
from sqlmodel import Session, col

import catalog.service as catalog
from catalog.refs import parse_ref
from plugins.cost.models import Granularity, GroupBy, UsageRow
from plugins.cost.service.usage import check_range
from portal import InvalidInput
from portal.settings import Settings

MAX_MONTHS = 120
UNATTRIBUTED = "Unattributed"
GROUP_COLUMNS = {"team": UsageRow.team, "project": UsageRow.project, "model": UsageRow.model}
CSV_HEADER = [
    "period",
    "group_by",
    "group",
    "metric",
    "quantity",
    "unit",
    "price",
    "cost",
    "currency",
]


@dataclass(frozen=True)
class Series:
    """One team's (project's, model's) cost per period, and its usage over the range."""

    key: str
    title: str
    total: float
    costs: list[float]
    usage: dict[str, float]


@dataclass(frozen=True)
class Report:
    start: date
    end: date
    group_by: GroupBy
    granularity: Granularity
    currency: str
    periods: list[str]
    series: list[Series]
    prices: dict[str, float]
    units: dict[str, str]
    collected_through: date | None
    # (period, group, metric) -> quantity, for the CSV's rows.
    cells: dict[tuple[str, str, str], float] = field(default_factory=dict)

    @property
    def total(self) -> float:
        return round(sum(series.total for series in self.series), 2)


def build_report(
    session: Session,
    *,
    start: date,
    end: date,
    group_by: GroupBy,
    granularity: Granularity,
    settings: Settings,
    units: dict[str, str],
    collected_through: date | None,
    teams: list[str] | None = None,
) -> Report:
    """The priced usage of ``start`` to ``end`` (both included), one series per group,
    largest first; ``teams`` limits it to those teams' usage."""
    _check_period(start, end, granularity)
    group = GROUP_COLUMNS[group_by]
    query = (
        select(
            col(UsageRow.day), col(group), col(UsageRow.metric), func.sum(col(UsageRow.quantity))
        )
        .where(col(UsageRow.day) >= start, col(UsageRow.day) <= end)
        .group_by(col(UsageRow.day), col(group), col(UsageRow.metric))
    )
    if teams is not None:
        query = query.where(col(UsageRow.team).in_(teams))
    periods = _periods(start, end, granularity)
    index = {period: position for position, period in enumerate(periods)}
    prices = settings.cost.prices
    cells: dict[tuple[str, str, str], float] = defaultdict(float)
    for day, key, metric, quantity in session.execute(query):
        cells[(_period(day, granularity), key, metric)] += float(quantity or 0)
    costs: dict[str, list[float]] = defaultdict(lambda: [0.0] * len(periods))
    usage: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for (period, key, metric), quantity in cells.items():
        costs[key][index[period]] += quantity * prices.get(metric, 0.0)
        usage[key][metric] += quantity
    titles = _titles(session, list(costs), group_by)
    series = [
        Series(
            key=key,
            title=titles[key],
            total=round(sum(values), 2),
            costs=[round(value, 2) for value in values],
            usage={metric: round(amount, 3) for metric, amount in sorted(usage[key].items())},
        )
        for key, values in costs.items()
    ]
    series.sort(key=lambda found: (-found.total, found.title))
    return Report(
        start=start,
        end=end,
        group_by=group_by,
        granularity=granularity,
        currency=settings.cost.currency,
        periods=periods,
        series=series,
        prices=dict(prices),
        units=units,
        collected_through=collected_through,
        cells=dict(cells),
    )


def as_csv(report: Report) -> str:
    """One line per period, group and metric: what a spreadsheet's pivot table wants."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_HEADER)
    titles = {series.key: series.key or UNATTRIBUTED for series in report.series}
    for (period, key, metric), quantity in sorted(report.cells.items()):
        price = report.prices.get(metric, 0.0)
        writer.writerow(
            [
                period,
                report.group_by,
                titles.get(key, key),
                metric,
                f"{quantity:.6g}",
                report.units.get(metric, metric),
                f"{price:g}",
                f"{quantity * price:.2f}",
                report.currency,
            ]
        )
    return out.getvalue()


def _check_period(start: date, end: date, granularity: Granularity) -> None:
    if granularity == "day":
        check_range(start, end)
        return
    if end < start:
        raise InvalidInput.for_field(
            "to", f"{end} is before from ({start})", "a day on or after from"
        )
    months = (end.year - start.year) * 12 + end.month - start.month + 1
    if months > MAX_MONTHS:
        raise InvalidInput.for_field("to", f"{months} months from {start}", f"at most {MAX_MONTHS}")


def _period(day: date, granularity: Granularity) -> str:
    return day.isoformat() if granularity == "day" else day.strftime("%Y-%m")


def _periods(start: date, end: date, granularity: Granularity) -> list[str]:
    if granularity == "day":
        return [(start + timedelta(days=n)).isoformat() for n in range((end - start).days + 1)]
    found: list[str] = []
    month = start.replace(day=1)
    while month <= end:
        found.append(month.strftime("%Y-%m"))
        month = (month + timedelta(days=32)).replace(day=1)
    return found


def _titles(session: Session, keys: list[str], group_by: GroupBy) -> dict[str, str]:
    """What people call each group: the entity's title (or name) for teams and projects."""
    titles = {key: key or UNATTRIBUTED for key in keys}
    if group_by == "model":
        return titles
    refs = [key for key in keys if key]
    kind = "group" if group_by == "team" else "component"
    try:
        entities = catalog.entities_by_refs(
            session, [str(parse_ref(ref, default_kind=kind)) for ref in refs]
        )
    except InvalidInput:
        return titles
    for key, entity in zip(refs, entities, strict=True):
        if entity is not None:
            metadata = entity.body.get("metadata", {})
            titles[key] = str(metadata.get("title") or metadata.get("name") or key)
    return titles

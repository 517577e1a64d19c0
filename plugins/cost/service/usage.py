"""Collecting usage: every source contributed through ``paved_cost_sources`` is read for a
range of days by a task, and replaces what it reported before for those days."""

from __future__ import annotations

import logging
import math
import threading
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from sqlalchemy import delete, select
from sqlmodel import Session, col

import catalog.service as catalog
from catalog.refs import parse_ref
from plugins.cost.models import SourceState, UsageRow
from plugins.cost.service.budgets import raise_alerts
from portal import InvalidInput, NotFound, TaskContext, TaskFailed
from portal import tasks as queue
from portal.db import utcnow
from portal.models import Task
from portal.plugins import Plugins
from portal.settings import Settings
from portal.usage import Usage, UsageSource, UsageWindow

log = logging.getLogger(__name__)

TASK_KIND = "cost.collect"
SOURCES_HOOK = "paved_cost_sources"
MAX_DAYS = 400
DATE_FORM = "a date, YYYY-MM-DD"


def available_sources(plugins: Plugins | None, settings: Settings) -> dict[str, UsageSource]:
    """Every usage source the plugins contribute and settings do not turn off, by name.

    A name already taken, or a metric the price sheet has no price for, degrades the
    plugin: its usage would be counted twice, or counted as free.
    """
    found: dict[str, UsageSource] = {}
    if plugins is None:
        return found
    prices = settings.cost.prices
    for contribution in plugins.collect(SOURCES_HOOK, UsageSource, settings=settings):
        source: UsageSource = contribution.item
        if source.name in found:
            plugins.degrade(contribution.plugin, f"usage source {source.name!r} is taken")
            continue
        unpriced = [metric for metric in source.metrics if metric not in prices]
        if unpriced:
            plugins.degrade(
                contribution.plugin,
                f"usage source {source.name!r} reports {', '.join(unpriced)}, which the price "
                f"sheet has no price for; set cost.prices.{unpriced[0]}",
            )
            continue
        if source.name not in settings.cost.disabled_sources:
            found[source.name] = source
    return found


def check_range(start: date, end: date) -> None:
    if end < start:
        raise InvalidInput.for_field(
            "to", f"{end} is before from ({start})", "a day on or after from"
        )
    if (end - start).days >= MAX_DAYS:
        raise InvalidInput.for_field(
            "to", f"{(end - start).days + 1} days from {start}", f"at most {MAX_DAYS} days"
        )


def start_collection(session: Session, start: date, end: date, *, by: str | None) -> Task:
    """Queue a collection of every source's usage from ``start`` to ``end``."""
    check_range(start, end)
    return queue.enqueue(
        session,
        TASK_KIND,
        title=f"Collect usage, {start} to {end}",
        params={"from": start.isoformat(), "to": end.isoformat()},
        created_by=by,
    )


def is_collecting(session: Session) -> bool:
    """A collection is queued or running."""
    pending = select(col(Task.id)).where(
        col(Task.kind) == TASK_KIND, col(Task.status).in_(("queued", "running"))
    )
    return session.scalar(pending.limit(1)) is not None


def run_collection(ctx: TaskContext) -> dict[str, Any]:
    """The ``cost.collect`` task: read each source and, in one transaction per source,
    replace its rows of those days; then raise the budget alerts the new figures cross.

    A source that fails keeps what it reported before; the task fails naming it once the
    other sources are read.
    """
    settings = ctx.settings or Settings()
    start, end = date.fromisoformat(ctx.params["from"]), date.fromisoformat(ctx.params["to"])
    sources = available_sources(ctx.plugins, settings)
    window = UsageWindow(start, end, ctx.engine, settings)
    failed: list[str] = []
    written = 0
    ctx.log(f"Reading {len(sources)} usage sources, {start} to {end}.")
    for index, source in enumerate(sources.values()):
        ctx.check_cancelled()
        try:
            found = _checked(source, window, source.collect(window))
            with Session(ctx.engine) as session:
                rows = _attributed(session, source.name, found)
                _replace(session, source.name, start, end, rows)
                session.commit()
        except Exception as exc:  # a plugin's source: say which, keep its old rows
            shown = str(exc) or type(exc).__name__
            log.warning("usage source %s failed", source.name, exc_info=True)
            ctx.log(f"{source.name}: {shown}", level="error")
            _record_failure(ctx, source.name, shown)
            failed.append(source.name)
        else:
            written += len(rows)
            ctx.log(f"{source.name}: {len(rows)} rows of usage.")
        ctx.progress(index + 1, len(sources))
    with Session(ctx.engine, expire_on_commit=False) as session:
        alerts = raise_alerts(session, _months(start, end), settings)
        session.commit()
    for alert in alerts:
        ctx.log(
            f"Budget alert: {alert.team} passed {alert.threshold}% of its {alert.month} budget."
        )
    if failed:
        raise TaskFailed(f"usage sources failed: {', '.join(failed)}; their earlier figures stay")
    return {"rows": written, "sources": list(sources), "alerts": len(alerts)}


def _checked(source: UsageSource, window: UsageWindow, found: Iterable[Usage]) -> list[Usage]:
    """Every record of the window's days and the source's metrics, with a finite quantity
    of 0 or more; the first that is not fails the source."""
    records = list(found)
    for record in records:
        problem = None
        if not isinstance(record, Usage):
            problem = f"returned {type(record).__name__}; expected Usage"
        elif not window.start <= record.day <= window.end:
            problem = f"reported {record.day}, outside {window.start} to {window.end}"
        elif record.metric not in source.metrics:
            problem = f"reported {record.metric!r}, not one of its metrics"
        elif not math.isfinite(record.quantity) or record.quantity < 0:
            problem = f"reported {record.metric} = {record.quantity} on {record.day}"
            problem += "; expected 0 or more"
        if problem:
            raise ValueError(problem)
    return records


def _attributed(session: Session, source: str, found: list[Usage]) -> list[UsageRow]:
    """One row per day, team, project, model and metric, each usage attributed to its team
    (given, or its project's owner in the catalog; empty when neither is known)."""
    owners: dict[str, str] = {}
    totals: dict[tuple[date, str, str, str, str], float] = defaultdict(float)
    for record in found:
        team = _team(record.team) if record.team else ""
        if not team and record.project:
            if record.project not in owners:
                owners[record.project] = _owner_of(session, record.project)
            team = owners[record.project]
        key = (record.day, team, record.project or "", record.model or "", record.metric)
        totals[key] += record.quantity
    return [
        UsageRow(
            source=source,
            day=day,
            team=team,
            project=project,
            model=model,
            metric=metric,
            quantity=quantity,
        )
        for (day, team, project, model, metric), quantity in totals.items()
    ]


def _team(owner: str) -> str:
    return parse_ref(owner, default_kind="group", field="team").key


def _owner_of(session: Session, project: str) -> str:
    try:
        entity = catalog.get_entity(session, parse_ref(project, default_kind="component"))
    except (NotFound, InvalidInput):
        return ""
    owner = entity.body.get("spec", {}).get("owner")
    try:
        return _team(owner) if isinstance(owner, str) and owner else ""
    except InvalidInput:
        return ""


def _replace(session: Session, source: str, start: date, end: date, rows: list[UsageRow]) -> None:
    session.execute(
        delete(UsageRow).where(
            col(UsageRow.source) == source, col(UsageRow.day) >= start, col(UsageRow.day) <= end
        )
    )
    session.add_all(rows)
    state = session.get(SourceState, source) or SourceState(name=source)
    if state.collected_from is None or start < state.collected_from:
        state.collected_from = start
    if state.collected_through is None or end > state.collected_through:
        state.collected_through = end
    state.collected_at = utcnow()
    state.rows = len(rows)
    state.error = None
    session.add(state)


def _record_failure(ctx: TaskContext, source: str, error: str) -> None:
    with Session(ctx.engine) as session:
        state = session.get(SourceState, source) or SourceState(name=source)
        state.error = error[:2000]
        session.add(state)
        session.commit()


def _months(start: date, end: date) -> list[str]:
    months: list[str] = []
    day = start.replace(day=1)
    while day <= end:
        months.append(day.strftime("%Y-%m"))
        day = (day + timedelta(days=32)).replace(day=1)
    return months


def source_states(session: Session) -> dict[str, SourceState]:
    return {state.name: state for state in session.scalars(select(SourceState))}


@dataclass
class Schedule:
    """Collects the last ``cost.collect_days`` days every ``cost.collect_interval`` seconds,
    unless a collection is already queued or running (so replicas do not pile them up)."""

    engine: Any
    settings: Settings

    def __post_init__(self) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="paved-cost", daemon=True)

    def start(self) -> None:
        if self.settings.cost.collect_interval > 0:
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def _loop(self) -> None:
        while not self._stop.wait(self.settings.cost.collect_interval):
            try:
                self.enqueue_due()
            except Exception:  # the database away for a moment: try again next time
                log.warning("could not queue the usage collection", exc_info=True)

    def enqueue_due(self) -> Task | None:
        today = utcnow().date()
        start = today - timedelta(days=self.settings.cost.collect_days - 1)
        with Session(self.engine, expire_on_commit=False) as session:
            if is_collecting(session):
                return None
            task = start_collection(session, start, today, by=None)
            session.commit()
            return task

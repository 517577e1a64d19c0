"""Serving's usage for chargeback: replica-hours of each deployment (its stable version and
canary, each at its minimum replicas, from its history of changes) and the requests its
router forwarded, per day, for its model's team."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta

from sqlalchemy import func, select
from sqlmodel import Session, col

from plugins.serving.models import Deployment, DeploymentEvent, MetricMinute
from portal.db import utcnow
from portal.usage import Usage, UsageSource, UsageWindow

HOUR = 3600.0


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _running(
    events: list[DeploymentEvent], until: datetime
) -> list[tuple[datetime, datetime, int]]:
    """Spans of time and how many versions served in each, from the deployment's events
    (each says what served after it); a removal ends the last span."""
    spans: list[tuple[datetime, datetime, int]] = []
    for event, following in zip(events, [*events[1:], None], strict=True):
        if event.kind == "removed":
            break
        versions = int(event.stable_version is not None) + int(event.canary_version is not None)
        end = _aware(following.at) if following is not None else until
        if versions and end > _aware(event.at):
            spans.append((_aware(event.at), end, versions))
    return spans


def _hours_per_day(
    spans: list[tuple[datetime, datetime, int]], window: UsageWindow
) -> dict[date, float]:
    hours: dict[date, float] = defaultdict(float)
    for day in window.days():
        first = datetime.combine(day, time.min, UTC)
        after = first + timedelta(days=1)
        for start, end, versions in spans:
            overlap = (min(end, after) - max(start, first)).total_seconds()
            if overlap > 0:
                hours[day] += versions * overlap / HOUR
    return hours


def _usage(window: UsageWindow) -> Iterator[Usage]:
    first = datetime.combine(window.start, time.min, UTC)
    after = datetime.combine(window.end + timedelta(days=1), time.min, UTC)
    now = utcnow()
    with Session(window.engine) as session:
        deployments = list(session.scalars(select(Deployment)))
        events: dict[int, list[DeploymentEvent]] = defaultdict(list)
        for event in session.scalars(select(DeploymentEvent).order_by(col(DeploymentEvent.id))):
            events[event.deployment_id].append(event)
        minute_day = func.date(col(MetricMinute.minute))
        requests = session.execute(
            select(col(MetricMinute.deployment), minute_day, func.sum(col(MetricMinute.requests)))
            .where(col(MetricMinute.minute) >= first, col(MetricMinute.minute) < after)
            .group_by(col(MetricMinute.deployment), minute_day)
        ).all()
    by_name = {deployment.name: deployment for deployment in deployments}
    for deployment in deployments:
        assert deployment.id is not None
        replicas = int((deployment.serving.get("replicas") or {}).get("min", 1) or 1)
        spans = _running(events[deployment.id], min(now, after))
        for served_day, hours in _hours_per_day(spans, window).items():
            yield _of(deployment, served_day, "replica_hours", hours * replicas)
    for name, served_on, count in requests:
        served = by_name.get(name)
        if served is not None and count:
            day = served_on if isinstance(served_on, date) else date.fromisoformat(str(served_on))
            yield _of(served, day, "thousand_requests", float(count) / 1000)


def _of(deployment: Deployment, day: date, metric: str, quantity: float) -> Usage:
    return Usage(
        day=day,
        metric=metric,
        quantity=quantity,
        team=deployment.owner or None,
        project=deployment.project,
        model=deployment.model,
    )


SOURCE = UsageSource(
    name="serving",
    description="Deployments: replicas kept running, and requests answered",
    metrics={"replica_hours": "replica-hours", "thousand_requests": "thousand requests"},
    collect=lambda window: list(_usage(window)),
)

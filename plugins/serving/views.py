"""How deployments are shown: the API's view of one, its thresholds, and its per-minute
figures for the charts."""

from __future__ import annotations

from typing import Any

from sqlmodel import Session, col, select

from plugins.serving.models import (
    Deployment,
    DeploymentEvent,
    DeploymentOut,
    EventOut,
    MetricMinute,
    MetricPoint,
    VersionMetricsOut,
)


def thresholds(deployment: Deployment) -> dict[str, float | None]:
    """The canary's thresholds (``serving.canary``), else the monitoring ones."""
    canary = dict((deployment.serving or {}).get("canary") or {})
    monitoring = deployment.monitoring or {}
    error_rate = canary.get("maxErrorRate", monitoring.get("maxErrorRate"))
    p99 = canary.get("maxP99Ms", monitoring.get("maxP99Ms"))
    return {
        "max_error_rate": float(error_rate) if error_rate is not None else None,
        "max_p99_ms": float(p99) if p99 is not None else None,
        "drift_threshold": float(monitoring.get("driftThreshold", 0.2)),
    }


def shown(
    deployment: Deployment,
    *,
    base_url: str = "",
    metrics: dict[str, Any] | None = None,
    events: list[DeploymentEvent] | None = None,
) -> DeploymentOut:
    return DeploymentOut(
        name=deployment.name,
        model=deployment.model,
        model_ref=deployment.model_ref,
        project=deployment.project,
        owner=deployment.owner,
        environment=deployment.environment,
        runtime=deployment.runtime,
        status=deployment.status,
        message=deployment.message,
        stable_version=deployment.stable_version,
        canary_version=deployment.canary_version,
        canary_percent=deployment.canary_percent,
        previous_version=deployment.previous_version,
        pending=deployment.pending,
        endpoints=deployment.endpoints,
        url=f"{base_url.rstrip('/')}/serve/{deployment.name}/invocations",
        task_id=deployment.task_id,
        monitoring=deployment.monitoring,
        thresholds=thresholds(deployment),
        created_by=deployment.created_by,
        created_at=deployment.created_at,
        updated_at=deployment.updated_at,
        metrics={
            version: VersionMetricsOut.model_validate(summary)
            for version, summary in (metrics or {}).items()
        },
        events=[EventOut.model_validate(event, from_attributes=True) for event in events or []],
    )


def metric_history(session: Session, name: str, since: Any) -> list[MetricMinute]:
    query = (
        select(MetricMinute)
        .where(col(MetricMinute.deployment) == name, col(MetricMinute.minute) >= since)
        .order_by(col(MetricMinute.minute), col(MetricMinute.version))
    )
    return list(session.exec(query).all())


def merged_minutes(rows: list[MetricMinute]) -> list[MetricPoint]:
    """One point per minute and version, adding up what each portal process wrote (their
    percentiles cannot be added: the highest is shown)."""
    merged: dict[tuple[Any, str], MetricPoint] = {}
    for row in rows:
        key = (row.minute, row.version)
        found = merged.get(key)
        if found is None:
            merged[key] = MetricPoint(
                minute=row.minute,
                version=row.version,
                requests=row.requests,
                errors=row.errors,
                error_rate=row.errors / row.requests if row.requests else 0.0,
                p50_ms=row.p50_ms,
                p99_ms=row.p99_ms,
            )
            continue
        requests = found.requests + row.requests
        errors = found.errors + row.errors
        merged[key] = found.model_copy(
            update={
                "requests": requests,
                "errors": errors,
                "error_rate": errors / requests if requests else 0.0,
                "p50_ms": _highest(found.p50_ms, row.p50_ms),
                "p99_ms": _highest(found.p99_ms, row.p99_ms),
            }
        )
    return list(merged.values())


def _highest(a: float | None, b: float | None) -> float | None:
    return max((v for v in (a, b) if v is not None), default=None)

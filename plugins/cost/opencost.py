"""Usage from an OpenCost (or Kubecost) allocation API: what each namespace of a cluster
used per day, attributed to the team owning the namespace (``cost.opencost.teams``)."""

from __future__ import annotations

import calendar
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from portal.settings import OpenCostSettings
from portal.usage import Usage, UsageSource, UsageWindow

SOURCE = "opencost"
# Allocations that belong to no workload: the cluster's idle capacity, unmounted volumes.
NOT_WORKLOADS = ("__idle__", "__unallocated__", "__unmounted__")
GB = 1e9
METRICS = {
    "cpu_hours": "CPU-hours",
    "gpu_hours": "GPU-hours",
    "memory_gb_hours": "memory GB-hours",
    "storage_gb_months": "storage GB-months",
}


def opencost_source(settings: OpenCostSettings) -> UsageSource | None:
    """The source, when ``cost.opencost.url`` names an allocation API."""
    if not settings.url:
        return None

    def collect(window: UsageWindow) -> list[Usage]:
        return list(_usage(settings, window))

    return UsageSource(
        name=SOURCE,
        description=f"Namespaces' CPU, GPU, memory and volumes, from OpenCost at {settings.url}",
        metrics=METRICS,
        collect=collect,
    )


def _usage(settings: OpenCostSettings, window: UsageWindow) -> Iterator[Usage]:
    start = datetime.combine(window.start, datetime.min.time(), UTC)
    end = datetime.combine(window.end + timedelta(days=1), datetime.min.time(), UTC)
    params = {
        "window": f"{start:%Y-%m-%dT%H:%M:%SZ},{end:%Y-%m-%dT%H:%M:%SZ}",
        "aggregate": "namespace",
        "step": "1d",
        "accumulate": "false",
    }
    url = f"{str(settings.url).rstrip('/')}/allocation"
    try:
        answer = httpx.get(url, params=params, timeout=settings.timeout)
    except httpx.HTTPError as exc:
        raise RuntimeError(f"cannot reach OpenCost at {url} ({type(exc).__name__})") from None
    body = _body(answer, url)
    for allocations in body["data"]:
        for name, allocation in (allocations or {}).items():
            if name in NOT_WORKLOADS or not isinstance(allocation, dict):
                continue
            yield from _of_allocation(settings, name, allocation, window)


def _body(answer: httpx.Response, url: str) -> dict[str, Any]:
    if answer.status_code != 200:
        raise RuntimeError(f"OpenCost at {url} answered {answer.status_code}: {answer.text[:200]}")
    try:
        body = answer.json()
    except ValueError:
        raise RuntimeError(f"OpenCost at {url} answered something that is not JSON") from None
    if (
        not isinstance(body, dict)
        or body.get("code") != 200
        or not isinstance(body.get("data"), list)
    ):
        shown = body.get("message") if isinstance(body, dict) else None
        raise RuntimeError(
            f"OpenCost at {url} answered no allocations ({shown or 'no data list'}); expected "
            '{"code": 200, "data": [{namespace: allocation}]}'
        )
    return body


def _of_allocation(
    settings: OpenCostSettings, namespace: str, allocation: dict[str, Any], window: UsageWindow
) -> Iterator[Usage]:
    started = str((allocation.get("window") or {}).get("start") or allocation.get("start") or "")
    try:
        day = datetime.fromisoformat(started.replace("Z", "+00:00")).astimezone(UTC).date()
    except ValueError:
        raise RuntimeError(f"OpenCost: {namespace}'s allocation has no window start") from None
    if not window.start <= day <= window.end:
        return
    team = settings.teams.get(namespace, f"group:default/{namespace}")
    days_in_month = calendar.monthrange(day.year, day.month)[1]
    figures = {
        "cpu_hours": _number(allocation, "cpuCoreHours"),
        "gpu_hours": _number(allocation, "gpuHours"),
        "memory_gb_hours": _number(allocation, "ramByteHours") / GB,
        "storage_gb_months": _number(allocation, "pvByteHours") / GB / (24 * days_in_month),
    }
    for metric, quantity in figures.items():
        if quantity > 0:
            yield Usage(day=day, metric=metric, quantity=quantity, team=team)


def _number(allocation: dict[str, Any], key: str) -> float:
    value = allocation.get(key) or 0
    return float(value) if isinstance(value, int | float) and value >= 0 else 0.0

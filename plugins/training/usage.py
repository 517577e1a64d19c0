"""Training's usage for chargeback: the CPU, GPU and memory each finished job used, on the
day it finished, for its project's team."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, time, timedelta

from sqlalchemy import select
from sqlmodel import Session, col

from plugins.training.models import TrainingJob
from portal.models import Task
from portal.usage import Usage, UsageSource, UsageWindow

HOUR = 3600.0
GB = 1e9


def _usage(window: UsageWindow) -> Iterator[Usage]:
    first = datetime.combine(window.start, time.min, UTC)
    after = datetime.combine(window.end + timedelta(days=1), time.min, UTC)
    query = (
        select(TrainingJob, col(Task.finished_at))
        .join(Task, col(Task.id) == col(TrainingJob.task_id))
        .where(col(Task.finished_at) >= first, col(Task.finished_at) < after)
    )
    with Session(window.engine) as session:
        found = session.execute(query).all()
    for job, finished in found:
        used = job.usage or {}
        if not used:
            continue
        day = finished.date()
        seconds = float(used.get("seconds", 0.0))
        figures = {
            "cpu_hours": float(used.get("cpu_seconds", 0.0)) / HOUR,
            "gpu_hours": float(used.get("gpu_seconds", 0.0)) / HOUR,
            "memory_gb_hours": float(used.get("max_memory_bytes", 0.0)) / GB * seconds / HOUR,
        }
        for metric, quantity in figures.items():
            if quantity > 0:
                yield Usage(
                    day=day,
                    metric=metric,
                    quantity=quantity,
                    team=job.owner or None,
                    project=job.project,
                    model=job.model,
                )


SOURCE = UsageSource(
    name="training",
    description="Finished training jobs: CPU and GPU time, and memory held while they ran",
    metrics={
        "cpu_hours": "CPU-hours",
        "gpu_hours": "GPU-hours",
        "memory_gb_hours": "memory GB-hours",
    },
    collect=lambda window: list(_usage(window)),
)

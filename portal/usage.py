"""What cost sources report for chargeback: usage of one metric on one day, by a team's
project or model, and the sources contributed through ``paved_cost_sources``."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

    from portal.settings import Settings

# The metrics Paved's own sources report, and how people read their quantities. The price
# sheet (``cost.prices``) needs a price for each of these and for every metric a source adds.
METRICS = {
    "cpu_hours": "CPU-hours",
    "gpu_hours": "GPU-hours",
    "memory_gb_hours": "memory GB-hours",
    "replica_hours": "replica-hours",
    "thousand_requests": "thousand requests",
    "storage_gb_months": "storage GB-months",
}
METRIC_NAME = re.compile(r"[a-z][a-z0-9_]{0,62}")
SOURCE_NAME = re.compile(r"[a-z][a-z0-9_-]{0,62}")


@dataclass(frozen=True)
class Usage:
    """How much of ``metric`` was used on ``day``, and by whom.

    ``team`` is the owning Group's entity ref. Leave it None when you know the project (a
    Component ref) instead: the usage goes to whoever owns the project in the catalog.
    ``model`` is the registered model's name, for reports by model.
    """

    day: date
    metric: str
    quantity: float
    team: str | None = None
    project: str | None = None
    model: str | None = None


@dataclass(frozen=True)
class UsageWindow:
    """What a source is asked for: the days ``start`` to ``end`` (both included), with the
    portal's database and settings to find it."""

    start: date
    end: date
    engine: Engine
    settings: Settings

    def days(self) -> list[date]:
        first, last = self.start.toordinal(), self.end.toordinal()
        return [date.fromordinal(day) for day in range(first, last + 1)]


@dataclass(frozen=True)
class UsageSource:
    """A place usage comes from: ``collect(window)`` returns the usage of the window's days.

    ``metrics`` maps each metric it reports to how people read it (``{"tpu_hours":
    "TPU-hours"}``); every one needs a price in ``cost.prices``. ``collect`` runs in the
    collection task, so it may be slow (an HTTP API, a walk of artifact stores); raise
    with a line a person can act on when the place cannot be read.
    """

    name: str
    description: str
    metrics: dict[str, str]
    collect: Callable[[UsageWindow], Iterable[Usage]]

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not SOURCE_NAME.fullmatch(self.name):
            raise ValueError(f"UsageSource name {self.name!r}; expected lower-case letters")
        if not self.metrics:
            raise ValueError(f"UsageSource {self.name}: metrics is empty; expected one at least")
        wrong = [name for name in self.metrics if not METRIC_NAME.fullmatch(name)]
        if wrong:
            raise ValueError(
                f"UsageSource {self.name}: metric {wrong[0]!r}; expected lower_snake_case"
            )
        if not callable(self.collect):
            raise TypeError(f"UsageSource {self.name}: collect must be callable")

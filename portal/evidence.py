"""What SOC 2 evidence collectors report: a table of facts for a period, the controls it
shows, and what an auditor should look at; the collectors come from
``paved_evidence_collectors``."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

    from portal.settings import Settings

COLLECTOR_NAME = re.compile(r"[a-z][a-z0-9_]{0,40}(\.[a-z][a-z0-9_]{0,40})?")
# Trust services criteria ids: CC6.1, C1.1, A1.2, PI1.3, P4.1.
CONTROL_ID = re.compile(r"(CC|C|A|PI|P)[1-9]\.[1-9][0-9]?")


@dataclass(frozen=True)
class EvidencePeriod:
    """What a collector is asked for: the days ``start`` to ``end`` (both included, UTC),
    with the portal's database and settings to find it."""

    start: date
    end: date
    engine: Engine
    settings: Settings

    @property
    def since(self) -> datetime:
        """The period's first moment."""
        return datetime.combine(self.start, time(), UTC)

    @property
    def until(self) -> datetime:
        """The moment after the period: events before it belong to the period."""
        return datetime.combine(self.end + timedelta(days=1), time(), UTC)


@dataclass(frozen=True)
class Evidence:
    """What a collector found: ``rows`` (one dict per fact, keyed by ``columns``), the
    ``summary`` figures shown beside them, and ``exceptions``, each a sentence naming
    something an auditor should question (a token unused for a year, a production change
    nobody approved). No exception means the evidence supports its controls."""

    columns: Sequence[str]
    rows: Sequence[dict[str, Any]]
    summary: dict[str, Any] = field(default_factory=dict)
    exceptions: Sequence[str] = ()

    def __post_init__(self) -> None:
        known = set(self.columns)
        for index, row in enumerate(self.rows):
            extra = set(row) - known
            if extra:
                raise ValueError(
                    f"evidence row {index} has {sorted(extra)[0]!r}, which is not one of "
                    f"its columns ({', '.join(self.columns)})"
                )


@dataclass(frozen=True)
class EvidenceCollector:
    """A kind of evidence: ``collect(period)`` returns what shows ``controls`` held during
    the period.

    ``name`` is dotted lower case (``serving.production_changes``) and names its files in
    an evidence pack. ``controls`` are SOC 2 criteria ids (``CC8.1``). ``collect`` runs in
    the export task: it may read the whole period, but it must not change anything and
    must not return personal data beyond who did what (no dataset values).
    """

    name: str
    title: str
    description: str
    controls: tuple[str, ...]
    collect: Callable[[EvidencePeriod], Evidence]

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not COLLECTOR_NAME.fullmatch(self.name):
            raise ValueError(
                f"EvidenceCollector name {self.name!r}; expected dotted lower case "
                "such as 'serving.production_changes'"
            )
        if not self.controls:
            raise ValueError(f"EvidenceCollector {self.name}: controls is empty")
        wrong = [control for control in self.controls if not CONTROL_ID.fullmatch(control)]
        if wrong:
            raise ValueError(
                f"EvidenceCollector {self.name}: control {wrong[0]!r}; expected a SOC 2 "
                "criterion id such as 'CC6.1'"
            )
        if not callable(self.collect):
            raise TypeError(f"EvidenceCollector {self.name}: collect must be callable")


def moment(value: datetime | None) -> str | None:
    """A time as evidence shows it: UTC, ISO 8601, to the second."""
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).isoformat(timespec="seconds")


def as_row(**values: Any) -> dict[str, Any]:
    """A row with its times shown as ``moment`` shows them."""
    return {
        name: moment(value) if isinstance(value, datetime) else value
        for name, value in values.items()
    }

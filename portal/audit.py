"""The tamper-evident audit log: appending events to a hash chain and verifying it.

Each event stores the SHA-256, over canonical JSON, of the event before it
(``prev_hash``) and of itself (``hash``). Changing, removing or re-ordering any row
breaks the chain at that row, and ``verify_chain`` names it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, update
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from portal.db import as_utc, utcnow
from portal.models import GENESIS_HASH, AuditEvent, AuditHead

HASHED_FIELDS = (
    "id",
    "at",
    "actor",
    "action",
    "resource",
    "allowed",
    "reasons",
    "request_id",
    "outcome",
    "detail",
    "prev_hash",
)
OUTCOMES = ("succeeded", "failed", "denied")


def hashed_fields(event: AuditEvent) -> dict[str, Any]:
    """What the event's hash covers, as plain JSON data (UTC time to the microsecond)."""
    fields: dict[str, Any] = {name: getattr(event, name) for name in HASHED_FIELDS}
    fields["at"] = as_utc(event.at).isoformat(timespec="microseconds")
    return fields


def canonical_json(event: AuditEvent) -> bytes:
    """The event as canonical JSON: sorted keys, no spaces, UTC time to the microsecond."""
    return canonical_bytes(hashed_fields(event))


def canonical_bytes(fields: dict[str, Any]) -> bytes:
    return json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def digest(event: AuditEvent) -> str:
    return hashlib.sha256(canonical_json(event)).hexdigest()


def record_digest(record: dict[str, Any]) -> str:
    """The hash of an exported event (``hashed_fields`` plus ``hash``), checked offline."""
    return hashlib.sha256(
        canonical_bytes({name: record.get(name) for name in HASHED_FIELDS})
    ).hexdigest()


def append_event(
    session: Session,
    *,
    actor: str,
    action: str,
    allowed: bool,
    outcome: str,
    resource: str | None = None,
    reasons: Sequence[str] = (),
    request_id: str | None = None,
    detail: dict[str, Any] | None = None,
) -> AuditEvent:
    """Append one event in the caller's transaction; it lands with the work or not at all.

    Updating the head first takes its lock, so concurrent appenders queue up behind it
    instead of both chaining onto the same last event.
    """
    if outcome not in OUTCOMES:
        raise ValueError(f"outcome {outcome!r}; expected one of {', '.join(OUTCOMES)}")
    length, last_hash = session.execute(
        update(AuditHead)
        .where(col(AuditHead.id) == 1)
        .values(length=AuditHead.length + 1)
        .returning(col(AuditHead.length), col(AuditHead.last_hash))
    ).one()
    event = AuditEvent(
        id=length,
        at=utcnow(),
        actor=actor,
        action=action,
        resource=resource,
        allowed=allowed,
        reasons=list(reasons),
        request_id=request_id,
        outcome=outcome,
        detail=detail or {},
        prev_hash=last_hash,
        hash="",
    )
    event.hash = digest(event)
    session.add(event)
    session.flush()
    session.execute(update(AuditHead).where(col(AuditHead.id) == 1).values(last_hash=event.hash))
    return event


def append_alone(engine: Engine, **event: Any) -> AuditEvent:
    """Append one event in a transaction of its own (an event that goes with no other work)."""
    with Session(engine, expire_on_commit=False) as session:
        appended = append_event(session, **event)
        session.commit()
        return appended


@dataclass(frozen=True)
class Verification:
    """What ``verify_chain`` found: how many events it checked, and the first broken one."""

    checked: int
    broken_at: int | None = None
    problem: str | None = None

    @property
    def is_intact(self) -> bool:
        return self.broken_at is None


def verify_chain(
    session: Session,
    *,
    batch: int = 5000,
    on_progress: Callable[[int, int], None] | None = None,
) -> Verification:
    """Walk the chain from the first event; stop at the first one that does not fit."""
    head = session.get(AuditHead, 1)
    total = head.length if head else 0
    expected_id, previous = 1, GENESIS_HASH
    for event in events_in_order(session, batch=batch):
        if event.id != expected_id:
            return Verification(
                expected_id - 1,
                expected_id,
                f"event {expected_id} is missing (the next one is {event.id})",
            )
        if event.prev_hash != previous:
            return Verification(
                expected_id - 1,
                event.id,
                f"event {event.id} does not follow event {event.id - 1}: "
                "events were removed or re-ordered",
            )
        if digest(event) != event.hash:
            return Verification(
                expected_id - 1, event.id, f"event {event.id} was changed after it was written"
            )
        previous, expected_id = event.hash, expected_id + 1
        if on_progress is not None and expected_id % batch == 1:
            on_progress(expected_id - 1, total)
    checked = expected_id - 1
    if on_progress is not None:
        on_progress(checked, total)
    if head is None or checked != head.length or previous != head.last_hash:
        return Verification(
            checked,
            checked + 1,
            f"the chain ends at event {checked} but {total} were written: "
            "the newest events were removed",
        )
    return Verification(checked)


def verify_segment(session: Session, first: int, last: int, *, batch: int = 5000) -> Verification:
    """Check events ``first`` to ``last``: each is unchanged and follows the one before it,
    the first following event ``first - 1``. The events before are not walked."""
    previous = GENESIS_HASH
    if first > 1:
        before = session.get(AuditEvent, first - 1)
        if before is None:
            return Verification(0, first - 1, f"event {first - 1} is missing")
        previous = before.hash
    expected_id = first
    for event in events_in_order(session, after=first - 1, through=last, batch=batch):
        if event.id != expected_id:
            return Verification(
                expected_id - first,
                expected_id,
                f"event {expected_id} is missing (the next one is {event.id})",
            )
        if event.prev_hash != previous:
            return Verification(
                expected_id - first,
                event.id,
                f"event {event.id} does not follow event {event.id - 1}: "
                "events were removed or re-ordered",
            )
        if digest(event) != event.hash:
            return Verification(
                expected_id - first, event.id, f"event {event.id} was changed after it was written"
            )
        previous, expected_id = event.hash, expected_id + 1
    if expected_id != last + 1:
        return Verification(
            expected_id - first, expected_id, f"events {expected_id} to {last} are missing"
        )
    return Verification(last - first + 1)


def events_in_order(
    session: Session, *, after: int = 0, through: int | None = None, batch: int = 5000
) -> Iterator[AuditEvent]:
    """The events after id ``after`` up to ``through`` (included), oldest first, read
    ``batch`` at a time; they are detached as the walk goes, so memory stays flat."""
    while True:
        query = select(AuditEvent).where(col(AuditEvent.id) > after)
        if through is not None:
            query = query.where(col(AuditEvent.id) <= through)
        rows = session.exec(query.order_by(col(AuditEvent.id)).limit(batch)).all()
        if not rows:
            return
        yield from rows
        after = rows[-1].id
        session.expunge_all()  # keep memory flat on long chains


def segment_between(session: Session, since: datetime, until: datetime) -> tuple[int, int] | None:
    """The ids of the first and last events written from ``since`` until before ``until``,
    or None when none were. Every event between the two belongs to the segment, so it is
    continuous even if replicas' clocks wrote a few out of time order."""
    first = session.scalar(select(func.min(AuditEvent.id)).where(col(AuditEvent.at) >= since))
    last = session.scalar(select(func.max(AuditEvent.id)).where(col(AuditEvent.at) < until))
    if first is None or last is None or first > last:
        return None
    return int(first), int(last)


@dataclass(frozen=True)
class AuditFilter:
    """Which events to list; every field narrows, None means any."""

    actor: str | None = None
    action: str | None = None
    resource: str | None = None
    outcome: str | None = None
    since: datetime | None = None
    until: datetime | None = None


@dataclass(frozen=True)
class AuditPage:
    events: list[AuditEvent]
    next_cursor: int | None  # pass as ``before`` for the next (older) page


def list_events(
    session: Session, where: AuditFilter, *, before: int | None = None, limit: int = 100
) -> AuditPage:
    """Events matching ``where``, newest first, ``limit`` at a time (cursor: ``before``)."""
    query = select(AuditEvent).order_by(col(AuditEvent.id).desc()).limit(limit + 1)
    if before is not None:
        query = query.where(col(AuditEvent.id) < before)
    for name in ("actor", "action", "resource", "outcome"):
        value = getattr(where, name)
        if value:
            query = query.where(getattr(AuditEvent, name) == value)
    if where.since is not None:
        query = query.where(col(AuditEvent.at) >= where.since)
    if where.until is not None:
        query = query.where(col(AuditEvent.at) < where.until)
    found = list(session.exec(query).all())
    more = len(found) > limit
    return AuditPage(found[:limit], found[limit - 1].id if more else None)

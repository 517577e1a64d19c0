"""Applying a reading in the caller's transaction: new and changed entities written with
their search rows and relations, unchanged ones left alone, the ones no longer emitted
marked orphans, and an entity another location holds reported as a conflict."""

from __future__ import annotations

import hashlib
import os
import time
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Table, delete, update
from sqlmodel import Session, SQLModel, col, select

from catalog.ingestion.reading import Emitted, Problem, Reading
from catalog.ingestion.search import flatten, search_text
from catalog.models import (
    CatalogEntity,
    CatalogLocation,
    CatalogRelation,
    CatalogSearch,
    delete_entities,
)
from catalog.relations import relations_of
from portal.db import bulk_insert, utcnow
from portal.memory import cycle_collection_paused

MANAGED_BY_LOCATION = "backstage.io/managed-by-location"
MANAGED_BY_ORIGIN = "backstage.io/managed-by-origin-location"
ORPHAN = "backstage.io/orphan"
PROCESSING = "backstage.io/catalog-processing"
SEARCH_COLUMNS = ("entity_uid", "ordinal", "key", "value", "original_value")
RELATION_COLUMNS = ("origin_uid", "ordinal", "source_key", "type", "target_key", "target_ref")
# Rows written per statement when many entities change at once.
CHUNK = 500


@dataclass(frozen=True)
class Outcome:
    """What one refresh of a location changed."""

    added: int
    updated: int
    unchanged: int
    orphaned: int
    problems: int


def apply_reading(session: Session, location: CatalogLocation, reading: Reading) -> Outcome:
    with cycle_collection_paused():
        return _apply(session, location, reading)


def _apply(session: Session, location: CatalogLocation, reading: Reading) -> Outcome:
    now = utcnow()
    problems = list(reading.problems)
    mine = {
        row.ref: row
        for row in session.exec(
            select(CatalogEntity).where(col(CatalogEntity.location_id) == location.id)
        ).all()
    }
    wanted: dict[str, Emitted] = {}
    for emitted in [*([reading.root] if reading.root else []), *reading.entities]:
        key = emitted.ref.key
        if key in wanted:
            problems.append(
                Problem(
                    emitted.source.key,
                    f"{emitted.ref} is defined twice (also in {wanted[key].source.key})",
                    "metadata.name",
                    "one definition per entity",
                    key,
                )
            )
            continue
        wanted[key] = emitted
    others = _owned_elsewhere(session, location.id, [k for k in wanted if k not in mine])
    for key, owner_target in others.items():
        emitted = wanted.pop(key)
        problems.append(
            Problem(
                emitted.source.key,
                f"{emitted.ref} is already in the catalog from another location "
                f"({owner_target}); remove it there first",
                "metadata.name",
                "an entity no other location emits",
                key,
            )
        )
    errors_by_ref: dict[str, list[dict[str, Any]]] = {}
    for problem in problems:
        if problem.ref is not None:
            errors_by_ref.setdefault(problem.ref, []).append(problem.as_dict())

    unchanged = orphaned = 0
    changed: list[tuple[CatalogEntity | None, Emitted, str]] = []
    for key, emitted in wanted.items():
        row = mine.get(key)
        errors = errors_by_ref.get(key, [])
        if (
            row is not None
            and row.source_hash == emitted.source_hash
            and not row.is_orphan
            and row.errors == errors
        ):
            unchanged += 1
            continue
        changed.append((row, emitted, row.uid if row is not None else time_ordered_uid()))
    _write(session, location, changed, errors_by_ref, now)
    added = sum(1 for row, _, _ in changed if row is None)
    updated = len(changed) - added
    # Entities this location no longer emits become orphans. Kept as they were: those from
    # a file that could not be read this time, and those whose document is now invalid
    # (their last good version stays, with the problem shown on it).
    for key, row in mine.items():
        if key in wanted or row.source in reading.unreadable:
            continue
        kept_errors = errors_by_ref.get(key)
        if kept_errors is not None:
            if row.errors != kept_errors:
                _set_status(row, kept_errors)
                session.add(row)
            continue
        if not row.is_orphan:
            body = dict(row.body)
            metadata = dict(body.get("metadata") or {})
            metadata["annotations"] = {**(metadata.get("annotations") or {}), ORPHAN: "true"}
            body["metadata"] = metadata
            row.body, row.is_orphan, row.refreshed_at = body, True, now
            session.add(row)
            orphaned += 1
    location.errors = [p.as_dict() for p in problems if p.ref is None or p.ref not in wanted]
    location.refreshed_at = now
    session.add(location)
    session.flush()
    return Outcome(added, updated, unchanged, orphaned, len(problems))


def _owned_elsewhere(session: Session, location_id: str, keys: list[str]) -> dict[str, str]:
    """Of ``keys``, the ones a live entity of another location holds: key -> that location."""
    found: dict[str, str] = {}
    for chunk in _chunks(keys):
        rows = session.exec(
            select(CatalogEntity.ref, CatalogLocation.type, CatalogLocation.target)
            .join(CatalogLocation, col(CatalogLocation.id) == col(CatalogEntity.location_id))
            .where(col(CatalogEntity.ref).in_(chunk))
            .where(col(CatalogEntity.location_id) != location_id)
            .where(col(CatalogEntity.is_orphan).is_(False))
        )
        found.update({ref: f"{type_}:{target}" for ref, type_, target in rows})
    return found


def _write(
    session: Session,
    location: CatalogLocation,
    changed: list[tuple[CatalogEntity | None, Emitted, str]],
    errors_by_ref: Mapping[str, list[dict[str, Any]]],
    now: Any,
) -> None:
    """Write the new and changed entities, with their search rows and relations."""
    if not changed:
        return
    origin = f"{location.type}:{location.target}"
    new_rows: list[dict[str, Any]] = []
    updates: list[dict[str, Any]] = []
    written: list[tuple[str, dict[str, Any], Emitted]] = []
    # Orphans of other locations with these refs are taken over: drop them first.
    taken_over = [emitted.ref.key for row, emitted, _ in changed if row is None]
    for chunk in _chunks(taken_over):
        delete_entities(session, col(CatalogEntity.ref).in_(chunk))
    for row, emitted, uid in changed:
        body = _stored_body(emitted, uid, origin, errors_by_ref.get(emitted.ref.key, []))
        values = {
            "uid": uid,
            "ref": emitted.ref.key,
            "kind_key": emitted.ref.kind.lower(),
            "namespace_key": emitted.ref.namespace.lower(),
            "name_key": emitted.ref.name.lower(),
            "body": body,
            "etag": body["metadata"]["etag"],
            "location_id": location.id,
            "source": emitted.source.key,
            "source_hash": emitted.source_hash,
            "is_orphan": False,
            "errors": errors_by_ref.get(emitted.ref.key, []),
            "search_text": search_text(body),
            "refreshed_at": now,
        }
        if row is None:
            new_rows.append({**values, "created_at": now})
        else:
            updates.append(values)
        written.append((uid, body, emitted))
    old = [values["uid"] for values in updates]
    for chunk in _chunks(old):
        session.execute(delete(CatalogSearch).where(col(CatalogSearch.entity_uid).in_(chunk)))
        session.execute(delete(CatalogRelation).where(col(CatalogRelation.origin_uid).in_(chunk)))
    if new_rows:
        bulk_insert(session, _table(CatalogEntity), list(new_rows[0]), map(_values, new_rows))
    if updates:
        for chunk in _chunks(updates):
            session.execute(update(CatalogEntity), chunk)
    # Search rows and relations are made as they are sent: the database takes in one
    # while the next is being made.
    search_rows = (
        (uid, ordinal, key, value, original)
        for uid, body, _ in written
        for ordinal, (key, value, original) in enumerate(flatten(body))
    )
    bulk_insert(session, _table(CatalogSearch), SEARCH_COLUMNS, search_rows)
    relation_rows = (
        (
            uid,
            ordinal,
            relation.source.key,
            relation.type,
            relation.target.key,
            relation.target.text,
        )
        for uid, _, emitted in written
        for ordinal, relation in enumerate(relations_of(emitted.entity))
    )
    bulk_insert(session, _table(CatalogRelation), RELATION_COLUMNS, relation_rows)
    # The ORM's copies of these rows are stale now.
    session.expire_all()


def _stored_body(
    emitted: Emitted, uid: str, origin: str, errors: list[dict[str, Any]]
) -> dict[str, Any]:
    """The entity as the API returns it: uid, etag and the managed-by annotations added."""
    # A new envelope and metadata; the rest is shared with the reading, which no one changes.
    # Relations are the catalog's own, added as the entity is read.
    body = {key: value for key, value in emitted.entity.items() if key != "relations"}
    metadata = body["metadata"] = dict(body.get("metadata") or {})
    metadata["uid"] = uid
    metadata["etag"] = hashlib.sha256(f"{uid}:{emitted.source_hash}".encode()).hexdigest()[:40]
    metadata["annotations"] = {
        MANAGED_BY_LOCATION: emitted.source.key,
        MANAGED_BY_ORIGIN: origin,
        **(metadata.get("annotations") or {}),
    }
    if errors:
        body["status"] = _status(errors)
    return body


def _status(errors: list[dict[str, Any]]) -> dict[str, Any]:
    """Processing errors where Backstage puts them: ``status.items``."""
    return {
        "items": [
            {
                "type": PROCESSING,
                "level": "error",
                "message": error["message"],
                "error": {"name": "InputError", "message": error["message"]},
            }
            for error in errors
        ]
    }


def _set_status(row: CatalogEntity, errors: list[dict[str, Any]]) -> None:
    body = dict(row.body)
    body["status"] = _status(errors)
    row.body, row.errors = body, errors


def time_ordered_uid() -> str:
    """A UUID (version 7 layout: milliseconds since the epoch, then random bits), so new
    entities sort after existing ones in every index on the uid."""
    value = (int(time.time() * 1000) << 80) | int.from_bytes(os.urandom(10))
    value = (value & ~(0xF << 76)) | (0x7 << 76)  # version 7
    value = (value & ~(0x3 << 62)) | (0x2 << 62)  # RFC 4122 variant
    return str(uuid.UUID(int=value))


def _values(row: dict[str, Any]) -> tuple[Any, ...]:
    return tuple(row.values())


def _table(model: type[SQLModel]) -> Table:
    return model.__table__  # type: ignore[attr-defined,no-any-return]


def _chunks(items: list[Any], size: int = CHUNK) -> Iterator[list[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]

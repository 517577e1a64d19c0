"""The catalog's logic: locations, refreshing them, and reading entities back.

Other areas call this module; they never query ``catalog.models`` themselves. Functions
take the session first, do not commit (the request's session does), and raise Paved errors.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete
from sqlmodel import Session, col, select

from catalog import ingestion, readers
from catalog.ingestion import Outcome
from catalog.models import CatalogEntity, CatalogLocation, CatalogRelation
from catalog.readers import DEMO_DIR, Source
from catalog.refs import EntityRef, parse_ref
from portal.errors import Conflict, InvalidInput, NotFound
from portal.settings import CatalogSettings

DEMO_TARGET = DEMO_DIR / "catalog.yaml"


@dataclass(frozen=True)
class Registered:
    """A location just registered (or, on a dry run, what registering it would give)."""

    location: CatalogLocation
    entities: list[dict[str, Any]]
    outcome: Outcome | None
    problems: list[dict[str, Any]]
    exists: bool = False  # on a dry run: the location is registered already


def add_location(
    session: Session,
    type_: str,
    target: str,
    *,
    by: str,
    settings: CatalogSettings,
    dry_run: bool = False,
) -> Registered:
    """Register ``target`` and read it now; on ``dry_run`` only say what it would emit.

    A target that cannot be read at all is refused (nothing is registered); problems in
    files further down are kept on the location and shown.
    """
    source = readers.resolve(type_, target)
    existing = session.exec(
        select(CatalogLocation).where(col(CatalogLocation.target) == source.target)
    ).one_or_none()
    if existing is not None and not dry_run:
        raise Conflict(f"location {source.key} is already registered (id {existing.id})")
    reading = ingestion.read_tree(source, settings)
    if source.key in reading.unreadable:
        first = next(p for p in reading.problems if p.source == source.key)
        raise InvalidInput.for_field("target", first.message, first.expected)
    location = existing or CatalogLocation(
        id=str(uuid.uuid4()), type=source.type, target=source.target, created_by=by
    )
    problems = [problem.as_dict() for problem in reading.problems]
    if dry_run:
        entities = [e.entity for e in reading.entities]
        return Registered(location, entities, None, problems, exists=existing is not None)
    session.add(location)
    session.flush()
    outcome = ingestion.apply_reading(session, location, reading)
    return Registered(location, [e.entity for e in reading.entities], outcome, problems)


def list_locations(session: Session) -> list[CatalogLocation]:
    return list(
        session.exec(select(CatalogLocation).order_by(col(CatalogLocation.created_at))).all()
    )


def get_location(session: Session, location_id: str) -> CatalogLocation:
    location = session.get(CatalogLocation, location_id)
    if location is None:
        raise NotFound(f"there is no location {location_id}")
    return location


def delete_location(session: Session, location_id: str) -> CatalogLocation:
    """Remove a location and every entity it emitted."""
    location = get_location(session, location_id)
    session.execute(delete(CatalogEntity).where(col(CatalogEntity.location_id) == location.id))
    session.delete(location)
    session.flush()
    return location


def refresh_location(
    session: Session, location: CatalogLocation, settings: CatalogSettings
) -> Outcome:
    return ingestion.refresh_location(session, location, settings)


def refresh_entity(session: Session, ref: str, settings: CatalogSettings) -> Outcome:
    """Read the location an entity came from again (``POST /refresh``)."""
    entity = get_entity(session, parse_ref(ref, field="entityRef"))
    if entity.location_id is None:
        raise Conflict(f"{ref} belongs to no registered location, so it cannot be refreshed")
    return refresh_location(session, get_location(session, entity.location_id), settings)


def refresh_all(session: Session, settings: CatalogSettings) -> list[Outcome]:
    return [refresh_location(session, loc, settings) for loc in list_locations(session)]


def register_demo(session: Session, settings: CatalogSettings) -> Registered:
    """Paved's own demo catalog (``catalog/demo``)."""
    return add_location(session, "file", str(DEMO_TARGET), by="demo", settings=settings)


def location_of_entity(session: Session, ref: EntityRef) -> CatalogLocation:
    entity = get_entity(session, ref)
    if entity.location_id is None:
        raise NotFound(f"{ref} belongs to no registered location")
    return get_location(session, entity.location_id)


# -- Entities -------------------------------------------------------------------------------


def get_entity(session: Session, ref: EntityRef) -> CatalogEntity:
    entity = session.exec(
        select(CatalogEntity).where(col(CatalogEntity.ref) == ref.key)
    ).one_or_none()
    if entity is None:
        raise NotFound(f"there is no entity {ref}")
    return entity


def get_entity_by_uid(session: Session, uid: str) -> CatalogEntity:
    entity = session.get(CatalogEntity, uid)
    if entity is None:
        raise NotFound(f"there is no entity with uid {uid}")
    return entity


def entities_by_refs(session: Session, refs: Sequence[str]) -> list[CatalogEntity | None]:
    """The entities for ``refs`` in their order; None where the catalog has none."""
    keys = [parse_ref(ref, field=f"entityRefs[{index}]").key for index, ref in enumerate(refs)]
    rows = session.exec(select(CatalogEntity).where(col(CatalogEntity.ref).in_(set(keys)))).all()
    by_key = {row.ref: row for row in rows}
    return [by_key.get(key) for key in keys]


def delete_entity(session: Session, uid: str) -> CatalogEntity:
    """Remove one entity; its location emits it again on the next refresh unless changed."""
    entity = get_entity_by_uid(session, uid)
    session.delete(entity)
    session.flush()
    return entity


def relations_by_source(session: Session, refs: Sequence[str]) -> dict[str, list[dict[str, Any]]]:
    """Each entity's relations as the API shows them: ``[{type, targetRef}]``, sorted."""
    found: dict[str, list[dict[str, Any]]] = {ref: [] for ref in refs}
    if not refs:
        return found
    rows = session.execute(
        select(
            col(CatalogRelation.source_key),
            col(CatalogRelation.type),
            col(CatalogRelation.target_ref),
        )
        .where(col(CatalogRelation.source_key).in_(list(refs)))
        .distinct()
    )
    for source_key, type_, target_ref in rows:
        found.setdefault(source_key, []).append({"type": type_, "targetRef": target_ref})
    for relations in found.values():
        relations.sort(key=lambda relation: (relation["type"], relation["targetRef"]))
    return found


def as_api_entity(entity: CatalogEntity, relations: list[dict[str, Any]]) -> dict[str, Any]:
    return {**entity.body, "relations": relations}


def source_of(type_: str, target: str) -> Source:
    return readers.resolve(type_, target)

"""The catalog's logic: locations, refreshing them, and reading entities back.

Other areas call this module; they never query ``catalog.models`` themselves. Functions
take the session first, do not commit (the request's session does), and raise Paved errors.
"""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, false, func, not_, or_, true
from sqlmodel import Session, col, select

from catalog import ingestion, queries, readers
from catalog.ingestion import Outcome
from catalog.models import CatalogEntity, CatalogLocation, CatalogRelation, delete_entities
from catalog.readers import DEMO_DIR, Source
from catalog.refs import EntityRef, parse_ref, ref_of
from catalog.validation import validate_entity
from portal.errors import Conflict, FieldProblem, InvalidInput, NotFound
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
    delete_entities(session, col(CatalogEntity.location_id) == location.id)
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


def location_entity_ref(location: CatalogLocation) -> str:
    """``location:default/generated-<sha1>``: the entity standing for a registered location."""
    generated = ingestion.generated_location(Source(location.type, location.target))
    return str(ref_of(generated))


def ancestry(session: Session, ref: EntityRef) -> tuple[str, list[tuple[CatalogEntity, list[str]]]]:
    """How ``ref`` came to be in the catalog: it, the Location entity whose targets named
    its file, and so on up to the registered location (Backstage's ``/ancestry``)."""
    entity = get_entity(session, ref)
    locations = (
        session.exec(
            select(CatalogEntity).where(
                col(CatalogEntity.location_id) == entity.location_id,
                col(CatalogEntity.kind_key) == "location",
            )
        ).all()
        if entity.location_id is not None
        else []
    )
    naming: dict[str, CatalogEntity] = {}  # source key -> the Location entity naming it
    for location in locations:
        spec = location.body.get("spec") or {}
        if location.name_key.startswith("generated-"):
            naming.setdefault(f"{spec.get('type')}:{spec.get('target')}", location)
            continue
        parent_source = _source_from_key(location.source)
        targets = ([spec["target"]] if spec.get("target") else []) + list(spec.get("targets") or [])
        for target in targets:
            try:
                named = readers.resolve(
                    spec.get("type") or parent_source.type, target, relative_to=parent_source
                )
            except InvalidInput:
                continue
            naming.setdefault(named.key, location)
    chain: list[tuple[CatalogEntity, list[str]]] = []
    seen: set[str] = set()
    current: CatalogEntity | None = entity
    while current is not None and current.ref not in seen:
        seen.add(current.ref)
        parent = naming.get(current.source)
        if parent is not None and parent.ref in (current.ref, *seen):
            parent = None  # the registered location's own entity: the root
        chain.append((current, [_api_ref(parent)] if parent is not None else []))
        current = parent
    return _api_ref(chain[-1][0]), chain


def _api_ref(entity: CatalogEntity) -> str:
    return str(ref_of(entity.body))


def _source_from_key(key: str) -> Source:
    type_, _, target = key.partition(":")
    return Source(type_, target)


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


def entities_by_refs(
    session: Session, refs: Sequence[str], *, matching: Any = None
) -> list[CatalogEntity | None]:
    """The entities for ``refs`` in their order; None where the catalog has none (or where
    it does not meet the ``matching`` clause)."""
    keys = [parse_ref(ref, field=f"entityRefs[{index}]").key for index, ref in enumerate(refs)]
    statement = select(CatalogEntity).where(col(CatalogEntity.ref).in_(set(keys)))
    if matching is not None:
        statement = statement.where(matching)
    by_key = {row.ref: row for row in session.exec(statement).all()}
    return [by_key.get(key) for key in keys]


def delete_entity(session: Session, uid: str) -> CatalogEntity:
    """Remove one entity; its location emits it again on the next refresh unless changed."""
    entity = get_entity_by_uid(session, uid)
    delete_entities(session, col(CatalogEntity.uid) == uid)
    session.expunge(entity)
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


def source_of(type_: str, target: str) -> Source:
    return readers.resolve(type_, target)


@dataclass(frozen=True)
class LocationsFound:
    items: list[CatalogLocation]
    total: int
    next_cursor: str | None


LOCATION_FIELDS = {
    "id": CatalogLocation.id,
    "type": CatalogLocation.type,
    "target": CatalogLocation.target,
}


def query_locations(
    session: Session, predicate: Any, *, cursor: str | None, limit: int
) -> LocationsFound:
    """Registered locations matching ``predicate`` (``{type: url}``, ``{target: {$in: [...]}}``,
    ``$all``/``$any``/``$not``), ``limit`` at a time; the cursor carries the rest."""
    if cursor:
        try:
            state = json.loads(base64.b64decode(cursor.encode(), validate=True))
            predicate, offset, limit = state["query"], int(state["offset"]), int(state["limit"])
        except (ValueError, KeyError, TypeError, binascii.Error):
            raise InvalidInput.for_field(
                "cursor", "not a cursor this catalog gave", "a pageInfo.nextCursor"
            ) from None
    else:
        offset = 0
    clause = _location_clause(predicate, "query") if predicate else true()
    total = session.exec(select(func.count()).select_from(CatalogLocation).where(clause)).one()
    items = list(
        session.exec(
            select(CatalogLocation)
            .where(clause)
            .order_by(col(CatalogLocation.created_at), col(CatalogLocation.id))
            .offset(offset)
            .limit(limit)
        ).all()
    )
    following = offset + limit
    next_cursor = (
        base64.b64encode(
            json.dumps({"query": predicate, "offset": following, "limit": limit}).encode()
        ).decode()
        if following < total
        else None
    )
    return LocationsFound(items, total, next_cursor)


def _location_clause(predicate: Any, path: str) -> Any:
    if not isinstance(predicate, dict):
        raise InvalidInput.for_field(path, f"{predicate!r} is not a predicate", "an object")
    clauses = []
    for key, value in predicate.items():
        where = f"{path}.{key}"
        if key in ("$all", "$any") and isinstance(value, list):
            inner = [_location_clause(item, f"{where}[{i}]") for i, item in enumerate(value)]
            clauses.append(and_(true(), *inner) if key == "$all" else or_(false(), *inner))
        elif key == "$not":
            clauses.append(not_(_location_clause(value, where)))
        elif key in LOCATION_FIELDS:
            column = col(LOCATION_FIELDS[key])
            if isinstance(value, dict) and set(value) == {"$in"} and isinstance(value["$in"], list):
                clauses.append(column.in_([str(item) for item in value["$in"]]))
            elif isinstance(value, str):
                clauses.append(column == value)
            else:
                raise InvalidInput.for_field(
                    where, f"{value!r} is not a condition", 'a string or {"$in": [...]}'
                )
        else:
            raise InvalidInput.for_field(
                where, f"{key} is not a location field", "id, type, target, $all, $any or $not"
            )
    return and_(true(), *clauses)


def update_location(
    session: Session, location_id: str, type_: str, target: str, *, settings: CatalogSettings
) -> CatalogLocation:
    """Point a location at another target and read it there; refused if it cannot be read."""
    location = get_location(session, location_id)
    source = readers.resolve(type_, target)
    other = session.exec(
        select(CatalogLocation).where(
            col(CatalogLocation.target) == source.target, col(CatalogLocation.id) != location.id
        )
    ).first()
    if other is not None:
        raise Conflict(f"location {source.key} is already registered (id {other.id})")
    reading = ingestion.read_tree(source, settings)
    if source.key in reading.unreadable:
        first = next(p for p in reading.problems if p.source == source.key)
        raise InvalidInput.for_field("target", first.message, first.expected)
    location.type, location.target = source.type, source.target
    session.add(location)
    session.flush()
    ingestion.apply_reading(session, location, reading)
    return location


def analyze_location(
    session: Session, type_: str, target: str, *, settings: CatalogSettings
) -> dict[str, Any]:
    """What a location holds, entity by entity, and which of those the catalog has already."""
    source = readers.resolve(type_, target)
    reading = ingestion.read_tree(source, settings)
    if source.key in reading.unreadable:
        first = next(p for p in reading.problems if p.source == source.key)
        raise InvalidInput.for_field("target", first.message, first.expected)
    emitted = reading.entities
    known = {
        row.ref
        for row in session.exec(
            select(CatalogEntity).where(col(CatalogEntity.ref).in_([e.ref.key for e in emitted]))
        ).all()
    }
    return {
        "existingEntityFiles": [
            {
                "location": {"type": e.source.type, "target": e.source.target},
                "isRegistered": e.ref.key in known,
                "entity": e.entity,
            }
            for e in emitted
        ],
        "generateEntities": [],
    }


def check_entity(
    entity: dict[str, Any], location: str, settings: CatalogSettings
) -> list[FieldProblem]:
    """Every problem ingestion would find in ``entity`` read from ``location``
    (``type:target``), a Location's unreadable targets included."""
    try:
        valid = validate_entity(entity)
        ref = ref_of(valid)
    except InvalidInput as exc:
        return exc.errors or [FieldProblem("", exc.detail)]
    if ref.kind.lower() != "location":
        return []
    type_, _, target = location.partition(":")
    try:
        parent = readers.resolve(type_, target, field="location")
    except InvalidInput as exc:
        return exc.errors
    spec = valid.get("spec") or {}
    targets = ([spec["target"]] if spec.get("target") else []) + list(spec.get("targets") or [])
    problems: list[FieldProblem] = []
    for index, named in enumerate(targets):
        field = f"spec.targets[{index}]" if spec.get("targets") else "spec.target"
        try:
            readers.read(
                readers.resolve(
                    spec.get("type") or parent.type, named, relative_to=parent, field=field
                ),
                settings,
            )
        except InvalidInput as exc:
            problems.extend(
                FieldProblem(field, problem.message, problem.expected) for problem in exc.errors
            )
    return problems


def entities_of_kind(session: Session, kind: str, *, limit: int = 500) -> list[CatalogEntity]:
    """Entities of one kind (Template, Group...), by namespace and name: for pickers and
    lists of a few hundred, not for browsing the catalog."""
    query = queries.Query(filter=queries.parse_filters([f"kind={kind}"]), limit=limit)
    return list(queries.run(session, query, with_total=False).rows)


def search_entities(
    session: Session,
    filters: Sequence[str],
    term: str,
    *,
    owned_by: Sequence[str] = (),
    limit: int = 20,
) -> list[CatalogEntity]:
    """What an entity picker offers as one types: entities matching any of ``filters`` (the
    API's ``filter`` syntax) with every word of ``term`` in their names, titles or
    descriptions, and with ``owned_by``, owned by one of those refs; by name."""
    owned = [f"relations.ownedBy={ref}" for ref in owned_by]
    if owned_by:
        filters = [",".join([one, *owned]) for one in filters] or [",".join(owned)]
    query = queries.Query(
        filter=queries.parse_filters(filters),
        full_text=term.strip() or None,
        order=(queries.Order("metadata.name"),),
        limit=limit,
    )
    return list(queries.run(session, query, with_total=False).rows)

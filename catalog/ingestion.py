"""Ingestion: read a registered location's tree of files, then apply it in one transaction.

Reading follows Location entities to the locations they name (loops and depth are
refused), validates every document, and collects problems instead of stopping at the
first. Applying compares what was read with what the catalog holds for that location:
new and changed entities are written with their search rows and relations, unchanged ones
cost nothing, the ones no longer emitted are marked orphans, and an entity another
location already owns is a conflict on this one. A location that cannot be read at all
changes nothing but its error.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import yaml
from sqlalchemy import delete, insert, update
from sqlmodel import Session, col, select

from catalog import readers
from catalog.models import (
    SEARCH_VALUE_MAX,
    CatalogEntity,
    CatalogLocation,
    CatalogRelation,
    CatalogSearch,
)
from catalog.readers import Source
from catalog.refs import EntityRef, ref_of
from catalog.relations import relations_of
from catalog.validation import validate_entity
from portal.db import utcnow
from portal.errors import FieldProblem, InvalidInput
from portal.settings import CatalogSettings

MANAGED_BY_LOCATION = "backstage.io/managed-by-location"
MANAGED_BY_ORIGIN = "backstage.io/managed-by-origin-location"
ORPHAN = "backstage.io/orphan"
PROCESSING = "backstage.io/catalog-processing"
PLACEHOLDERS = ("$text", "$json", "$yaml")
# Rows written per statement when many entities change at once.
CHUNK = 500


@dataclass(frozen=True)
class Problem:
    """Something wrong in a location's tree: where, what, and the entity if it is known."""

    source: str
    message: str
    field: str | None = None
    expected: str | None = None
    ref: str | None = None  # lower-cased ref key of the entity it belongs to

    def as_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "field": self.field,
            "message": self.message,
            "expected": self.expected,
        }


@dataclass
class Emitted:
    """A valid entity read from ``source``."""

    entity: dict[str, Any]
    ref: EntityRef
    source: Source
    source_hash: str


@dataclass
class Reading:
    """Everything one registered location's tree gave: entities and problems."""

    # The Location entity standing for the registered location itself.
    root: Emitted | None = None
    entities: list[Emitted] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    # Files or URLs that could not be read or parsed: their entities are kept as they were.
    unreadable: set[str] = field(default_factory=set)


def read_tree(root: Source, settings: CatalogSettings) -> Reading:
    """Read ``root`` and every location its Location entities name."""
    generated = generated_location(root)
    reading = Reading(root=Emitted(generated, ref_of(generated), root, _digest(generated)))
    seen: set[str] = set()
    # (source, chain of sources that led here)
    pending: list[tuple[Source, tuple[str, ...]]] = [(root, ())]
    while pending:
        source, chain = pending.pop(0)
        if source.key in chain:
            loop = " -> ".join([*chain[chain.index(source.key) :], source.key])
            reading.problems.append(
                Problem(
                    chain[-1],
                    f"location loop: {loop}",
                    "spec.targets",
                    "targets that do not lead back to themselves",
                )
            )
            continue
        if source.key in seen:
            continue  # reached twice without a loop (a diamond): read once
        seen.add(source.key)
        if len(chain) > settings.max_depth:
            reading.problems.append(
                Problem(
                    chain[-1],
                    f"{source.key} is {len(chain)} locations deep",
                    "spec.targets",
                    f"at most {settings.max_depth} levels (catalog.max_depth)",
                )
            )
            continue
        for emitted in _read_source(source, reading, settings):
            reading.entities.append(emitted)
            if emitted.ref.kind.lower() == "location":
                for target_source in _targets(emitted, reading.problems):
                    pending.append((target_source, (*chain, source.key)))
    return reading


def generated_location(root: Source) -> dict[str, Any]:
    """The Location entity that stands for a registered location, named as Backstage names
    it (``generated-<sha1 of type:target>``): the root of its entities' ancestry."""
    name = "generated-" + hashlib.sha1(root.key.encode(), usedforsecurity=False).hexdigest()
    return {
        "apiVersion": "backstage.io/v1alpha1",
        "kind": "Location",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"type": root.type, "target": root.target},
    }


def _read_source(source: Source, reading: Reading, settings: CatalogSettings) -> Iterator[Emitted]:
    problems = reading.problems
    try:
        raw = readers.read(source, settings)
        documents = list(yaml.load_all(raw, Loader=_SafeLoader))
    except InvalidInput as exc:
        reading.unreadable.add(source.key)
        problems.extend(_problems(source.key, exc))
        return
    except yaml.YAMLError as exc:
        reading.unreadable.add(source.key)
        problems.append(
            Problem(source.key, f"invalid YAML: {_first_line(exc)}", None, "YAML documents")
        )
        return
    for number, document in enumerate(documents, start=1):
        if document is None:
            continue  # an empty document between two `---`
        where = f"document {number}"
        if not isinstance(document, dict):
            problems.append(
                Problem(
                    source.key,
                    f"{where} is a {type(document).__name__}",
                    None,
                    "an entity: a mapping with apiVersion, kind, metadata and spec",
                )
            )
            continue
        key = _ref_key_if_any(document)
        document, unresolved = _resolve_placeholders(document, source, settings, key)
        try:
            entity = validate_entity(document)
            ref = ref_of(entity)
        except InvalidInput as exc:
            problems.extend(_problems(source.key, exc, ref=key, prefix=f"{where}: "))
            continue
        # A placeholder that could not be read is a processing error on the entity, which
        # is still stored (as Backstage does), not a failure of the whole location.
        problems.extend(unresolved)
        yield Emitted(entity, ref, source, _digest(entity))


def _resolve_placeholders(
    document: dict[str, Any], source: Source, settings: CatalogSettings, ref: str | None
) -> tuple[dict[str, Any], list[Problem]]:
    """Replace ``{$text|$json|$yaml: target}`` with what the target holds, read under the
    same rules as locations; the ones that cannot be read stay, with a problem each."""
    problems: list[Problem] = []

    def resolve(value: Any, path: str) -> Any:
        if isinstance(value, dict):
            if len(value) == 1 and next(iter(value)) in PLACEHOLDERS:
                kind, target = next(iter(value.items()))
                try:
                    return _read_placeholder(kind, target, source, settings)
                except InvalidInput as exc:
                    detail = exc.errors[0].message if exc.errors else exc.detail
                    problems.append(
                        Problem(
                            source.key,
                            f"{path}: {kind} {target} could not be read: {detail}",
                            path,
                            exc.errors[0].expected if exc.errors else None,
                            ref,
                        )
                    )
                    return value
            return {
                key: resolve(inner, f"{path}.{key}" if path else key)
                for key, inner in value.items()
            }
        if isinstance(value, list):
            return [resolve(item, f"{path}[{index}]") for index, item in enumerate(value)]
        return value

    return resolve(document, ""), problems


def _read_placeholder(kind: str, target: Any, source: Source, settings: CatalogSettings) -> Any:
    if not isinstance(target, str):
        raise InvalidInput.for_field(kind, f"{target!r} is not a path or URL", "a path or URL")
    type_ = "url" if target.startswith(("http://", "https://")) else source.type
    text = readers.read(readers.resolve(type_, target, relative_to=source), settings).decode()
    try:
        if kind == "$json":
            return json.loads(text)
        if kind == "$yaml":
            return yaml.load(text, Loader=_SafeLoader)  # noqa: S506 (a SafeLoader subclass)
    except (ValueError, yaml.YAMLError) as exc:
        raise InvalidInput.for_field(
            kind, f"not valid {kind[1:].upper()}: {_first_line(exc)}", kind[1:].upper()
        ) from None
    return text


def _targets(location: Emitted, problems: list[Problem]) -> Iterator[Source]:
    spec = location.entity.get("spec") or {}
    type_ = spec.get("type") or location.source.type
    targets = [spec["target"]] if spec.get("target") else []
    targets += list(spec.get("targets") or [])
    for index, target in enumerate(targets):
        field_name = "spec.target" if spec.get("target") and index == 0 else "spec.targets"
        try:
            yield readers.resolve(type_, target, relative_to=location.source, field=field_name)
        except InvalidInput as exc:
            problems.extend(_problems(location.source.key, exc, ref=location.ref.key))


def _problems(
    source: str, exc: InvalidInput, *, ref: str | None = None, prefix: str = ""
) -> list[Problem]:
    found: list[FieldProblem] = exc.errors or [FieldProblem("", exc.detail)]
    return [
        Problem(source, prefix + problem.message, problem.field or None, problem.expected, ref)
        for problem in found
    ]


def _ref_key_if_any(document: Mapping[str, Any]) -> str | None:
    try:
        return ref_of(document).key
    except (InvalidInput, AttributeError, TypeError, KeyError):
        return None


class _SafeLoader(yaml.SafeLoader):
    """Safe YAML whose aliases cannot blow a small file up into a huge one."""

    MAX_ALIASES = 100

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            self._aliases = getattr(self, "_aliases", 0) + 1
            if self._aliases > self.MAX_ALIASES:
                raise yaml.YAMLError(
                    f"more than {self.MAX_ALIASES} aliases (*anchor references) in one file"
                )
        return super().compose_node(parent, index)


def _digest(entity: Mapping[str, Any]) -> str:
    text = json.dumps(entity, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def _first_line(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


# -- Applying a reading -------------------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    """What one refresh of a location changed."""

    added: int
    updated: int
    unchanged: int
    orphaned: int
    problems: int


def refresh_location(
    session: Session, location: CatalogLocation, settings: CatalogSettings
) -> Outcome:
    """Read ``location``'s tree and apply it; the caller's transaction holds all of it."""
    root = Source(location.type, location.target)
    reading = read_tree(root, settings)
    return apply_reading(session, location, reading)


def apply_reading(session: Session, location: CatalogLocation, reading: Reading) -> Outcome:
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
        changed.append((row, emitted, row.uid if row is not None else str(uuid.uuid4())))
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
    search_rows: list[dict[str, Any]] = []
    relation_rows: list[dict[str, Any]] = []
    # Orphans of other locations with these refs are taken over: drop them first.
    taken_over = [emitted.ref.key for row, emitted, _ in changed if row is None]
    for chunk in _chunks(taken_over):
        session.execute(delete(CatalogEntity).where(col(CatalogEntity.ref).in_(chunk)))
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
        search_rows.extend(
            {"entity_uid": uid, "key": key, "value": value, "original_value": original}
            for key, value, original in flatten(body)
        )
        relation_rows.extend(
            {
                "origin_uid": uid,
                "source_key": relation.source.key,
                "type": relation.type,
                "target_key": relation.target.key,
                "target_ref": str(relation.target),
            }
            for relation in relations_of(emitted.entity)
        )
    old = [values["uid"] for values in updates]
    for chunk in _chunks(old):
        session.execute(delete(CatalogSearch).where(col(CatalogSearch.entity_uid).in_(chunk)))
        session.execute(delete(CatalogRelation).where(col(CatalogRelation.origin_uid).in_(chunk)))
    for chunk in _chunks(new_rows):
        session.execute(insert(CatalogEntity), chunk)
    if updates:
        for chunk in _chunks(updates):
            session.execute(update(CatalogEntity), chunk)
    for chunk in _chunks(search_rows, 5 * CHUNK):
        session.execute(insert(CatalogSearch), chunk)
    for chunk in _chunks(relation_rows, 5 * CHUNK):
        session.execute(insert(CatalogRelation), chunk)
    # The ORM's copies of these rows are stale now.
    session.expire_all()


def _stored_body(
    emitted: Emitted, uid: str, origin: str, errors: list[dict[str, Any]]
) -> dict[str, Any]:
    """The entity as the API returns it: uid, etag and the managed-by annotations added."""
    body: dict[str, Any] = json.loads(json.dumps(emitted.entity))
    metadata = body.setdefault("metadata", {})
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


def flatten(body: Mapping[str, Any]) -> Iterator[tuple[str, str | None, str | None]]:
    """Every leaf of the entity as (key, lower-cased value, value as written), as Backstage's
    search table holds them.

    Lists repeat their key; values longer than the index allows are kept as None (the key
    still says the field exists); ``metadata.uid``/``etag`` and ``status`` are not searched.
    """
    seen: set[tuple[str, str | None]] = set()
    for key, value in _leaves(body, ""):
        if key in ("metadata.uid", "metadata.etag") or key.startswith("status"):
            continue
        if len(key) > 200:
            continue
        original = None if value is None else str(value)
        if isinstance(value, bool):
            original = "true" if value else "false"
        if original is not None and len(original) > SEARCH_VALUE_MAX:
            original = None
        pair = (key.lower(), original.lower() if original is not None else None)
        if pair not in seen:
            seen.add(pair)
            yield (*pair, original)
    if "namespace" not in (body.get("metadata") or {}):
        yield ("metadata.namespace", "default", "default")


def _leaves(value: Any, prefix: str) -> Iterable[tuple[str, Any]]:
    if isinstance(value, Mapping):
        if prefix:
            yield prefix, None  # the object itself exists (`filter=spec.schema`)
        for key, inner in value.items():
            yield from _leaves(inner, f"{prefix}.{key}" if prefix else str(key))
    elif isinstance(value, list):
        for item in value:
            yield from _leaves(item, prefix)
            if isinstance(item, str | int | float | bool):
                # As Backstage does: `metadata.tags.java` = true for the tag "java".
                yield f"{prefix}.{item}", True
    else:
        yield prefix, value


def search_text(body: Mapping[str, Any]) -> str:
    """What a full-text filter matches by default: names, titles, descriptions, tags, types."""
    metadata = body.get("metadata") or {}
    spec = body.get("spec") or {}
    parts = [
        str(body.get("kind", "")),
        str(metadata.get("name", "")),
        str(metadata.get("title", "")),
        str(metadata.get("description", "")),
        " ".join(str(tag) for tag in metadata.get("tags") or []),
        str(spec.get("type", "")) if isinstance(spec, Mapping) else "",
        str(spec.get("owner", "")) if isinstance(spec, Mapping) else "",
    ]
    return " ".join(part for part in parts if part).lower()


def _chunks(items: list[Any], size: int = CHUNK) -> Iterator[list[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]

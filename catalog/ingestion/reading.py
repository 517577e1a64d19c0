"""Reading a registered location's tree: files and URLs under the rules, Location entities
followed (loops and depth refused), every document validated, placeholders resolved, and
problems collected instead of stopping at the first."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import yaml

from catalog import readers
from catalog.readers import Source
from catalog.refs import EntityRef, ref_of
from catalog.validation import validate_entity
from portal.errors import FieldProblem, InvalidInput
from portal.memory import cycle_collection_paused
from portal.settings import CatalogSettings

PLACEHOLDERS = ("$text", "$json", "$yaml")


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
    with cycle_collection_paused():
        return _read_tree(root, settings)


def _read_tree(root: Source, settings: CatalogSettings) -> Reading:
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
        documents = load_yaml_documents(raw)
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
            documents = load_yaml_documents(text.encode())
            if len(documents) > 1:
                raise yaml.YAMLError(f"{len(documents)} documents where one was expected")
            return documents[0] if documents else None
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


def load_yaml_documents(raw: bytes) -> list[Any]:
    """Every document in ``raw``, loaded safely. Without an anchor (no ``&`` anywhere) there
    can be no alias, so libyaml's loader is safe and about ten times faster; otherwise the
    guarded loader counts the aliases."""
    if b"&" not in raw and _FastSafeLoader is not None:
        return list(yaml.load_all(raw, Loader=_FastSafeLoader))
    return list(yaml.load_all(raw, Loader=_SafeLoader))


_FastSafeLoader: Any = getattr(yaml, "CSafeLoader", None)


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

"""Entity references: ``kind:namespace/name``, parsed and written as Backstage does.

A ref names an entity by kind, namespace and name. Written out it is
``kind:namespace/name`` with kind and namespace lower-cased and the name as written
(Backstage's ``stringifyEntityRef``). Refs compare case-insensitively, as Backstage's do:
two refs are equal when their :attr:`EntityRef.key` (the whole string lower-cased) is.
In a spec a ref may leave out the kind and the namespace (``[kind:][namespace/]name``):
the field says which kind is meant (``spec.owner`` is a Group) and the namespace is the
referring entity's own.
See https://backstage.io/docs/features/software-catalog/references
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property, total_ordering
from typing import Any

from portal.errors import InvalidInput

DEFAULT_NAMESPACE = "default"
REF_FORM = "kind:[namespace/]name, e.g. component:default/scorer"


@total_ordering
@dataclass(frozen=True, eq=False)
class EntityRef:
    """One entity's identity. ``==``, ``hash`` and ordering go by :attr:`key`."""

    kind: str
    namespace: str
    name: str

    def __str__(self) -> str:
        return self.text

    @cached_property
    def text(self) -> str:
        """The ref written out (computed once: a large ingestion asks millions of times)."""
        return f"{self.kind.lower()}:{self.namespace.lower()}/{self.name}"

    @cached_property
    def key(self) -> str:
        """The ref lower-cased: what refs are compared, stored and looked up by."""
        return self.text.lower()

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, EntityRef):
            return NotImplemented
        return self.key == other.key

    def __hash__(self) -> int:
        return hash(self.key)

    def __lt__(self, other: EntityRef) -> bool:
        return self.key < other.key


def parse_ref(
    value: str | Mapping[str, Any],
    *,
    default_kind: str | None = None,
    default_namespace: str = DEFAULT_NAMESPACE,
    field: str = "ref",
) -> EntityRef:
    """The ref ``value`` names: a ``[kind:][namespace/]name`` string or a mapping of those parts.

    A missing kind or namespace is taken from ``default_kind``/``default_namespace``;
    a ref with no kind and no default, an empty part or a separator too many raises
    ``InvalidInput`` naming ``field``.
    """
    expected = ref_form(default_kind)
    if isinstance(value, Mapping):
        kind, namespace, name = _parts_of_mapping(value, field, expected)
    elif isinstance(value, str):
        kind, namespace, name = _parts_of_string(value, field, expected)
    else:
        raise InvalidInput.for_field(field, f"{_shown(value)} is not an entity ref", expected)
    kind = kind if kind is not None else default_kind
    if kind is None:
        raise InvalidInput.for_field(field, f"{_shown(value)} has no kind", expected)
    return EntityRef(kind, namespace if namespace is not None else default_namespace, name)


def ref_form(default_kind: str | None = None) -> str:
    """How a ref is written, as an ``expected`` text: the kind may be left out given a default."""
    if default_kind is None:
        return REF_FORM
    return f"[kind:][namespace/]name, the kind {default_kind} when left out"


def ref_of(entity: Mapping[str, Any]) -> EntityRef:
    """The ref of a whole entity: its kind, ``metadata.namespace`` (or default) and name."""
    kind = entity.get("kind")
    metadata = entity.get("metadata")
    name = metadata.get("name") if isinstance(metadata, Mapping) else None
    namespace = metadata.get("namespace") if isinstance(metadata, Mapping) else None
    if not isinstance(kind, str) or not kind:
        raise InvalidInput.for_field("kind", "missing", "the entity's kind, e.g. Component")
    if not isinstance(name, str) or not name:
        raise InvalidInput.for_field("metadata.name", "missing", "the entity's name")
    if namespace is None:
        namespace = DEFAULT_NAMESPACE
    if not isinstance(namespace, str) or not namespace:
        raise InvalidInput.for_field(
            "metadata.namespace",
            f"{_shown(namespace)} is not a namespace",
            "a namespace, e.g. default",
        )
    return EntityRef(kind, namespace, name)


def _parts_of_string(value: str, field: str, expected: str) -> tuple[str | None, str | None, str]:
    if not value:
        raise InvalidInput.for_field(field, "empty", expected)
    if value.count(":") > 1 or value.count("/") > 1:
        raise InvalidInput.for_field(field, f"{_shown(value)} has too many separators", expected)
    kind: str | None = None
    namespace: str | None = None
    rest = value
    if ":" in rest:
        kind, rest = rest.split(":")
        if not kind:
            raise InvalidInput.for_field(field, f"{_shown(value)} has an empty kind", expected)
    if "/" in rest:
        namespace, rest = rest.split("/")
        if not namespace:
            raise InvalidInput.for_field(field, f"{_shown(value)} has an empty namespace", expected)
    elif "/" in value:
        # The slash came before the colon: "default/team:a" is no ref.
        raise InvalidInput.for_field(field, f"{_shown(value)} has its parts out of order", expected)
    if not rest:
        raise InvalidInput.for_field(field, f"{_shown(value)} has an empty name", expected)
    return kind, namespace, rest


def _parts_of_mapping(
    value: Mapping[str, Any], field: str, expected: str
) -> tuple[str | None, str | None, str]:
    parts: dict[str, str | None] = {}
    for part in ("kind", "namespace", "name"):
        given = value.get(part)
        if given is not None and (not isinstance(given, str) or not given):
            raise InvalidInput.for_field(
                f"{field}.{part}", f"{_shown(given)} is not a {part}", "a non-empty string"
            )
        parts[part] = given
    name = parts["name"]
    if name is None:
        raise InvalidInput.for_field(f"{field}.name", "missing", expected)
    return parts["kind"], parts["namespace"], name


def _shown(value: object) -> str:
    """``value`` quoted as JSON, as the catalog's messages quote values."""
    return json.dumps(dict(value) if isinstance(value, Mapping) else value, default=str)

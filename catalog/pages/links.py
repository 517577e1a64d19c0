"""How the catalog's pages name and link an entity: its page's address, its kind as people
write it, and a short ref for the default namespace."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from catalog.refs import EntityRef, parse_ref

# Entity kinds whose name is not the lower-cased kind with a capital first letter.
KIND_LABELS = {"api": "API", "airesource": "AiResource"}


@dataclass(frozen=True)
class Link:
    """An entity as a link: ``url`` is None when the catalog does not hold it."""

    ref: str
    label: str
    url: str | None
    kind: str = ""
    title: str | None = None


def entity_url(ref: EntityRef | str) -> str:
    """The page of the entity ``ref`` names: ``/catalog/<kind>/<namespace>/<name>``."""
    parsed = parse_ref(ref) if isinstance(ref, str) else ref
    parts = (parsed.kind.lower(), parsed.namespace, parsed.name)
    return "/catalog/" + "/".join(quote(part, safe="") for part in parts)


def kind_label(kind: str) -> str:
    return KIND_LABELS.get(kind.lower(), kind[:1].upper() + kind[1:])


def short_ref(ref: str, *, default_kind: str = "group") -> str:
    """``group:default/fraud`` as people write it in the default namespace: ``fraud``."""
    kind, _, rest = ref.partition(":")
    namespace, _, name = rest.partition("/")
    shown = name if namespace == "default" else f"{namespace}/{name}"
    return shown if kind == default_kind else f"{kind}:{shown}"


def mapping_of(value: Any) -> Mapping[str, Any]:
    """``value`` if it is a mapping (an entity's ``metadata``, ``spec``), else an empty one."""
    return value if isinstance(value, Mapping) else {}

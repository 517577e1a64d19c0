"""What an entity is found by: its leaves as search rows, and its full-text words."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from catalog.models import SEARCH_VALUE_MAX


def flatten(body: Mapping[str, Any]) -> Iterator[tuple[str, str | None, str | None]]:
    """Every leaf of the entity as (key, lower-cased value, value as written), as Backstage's
    search table holds them (an object is found by its leaves: ``filter=spec.owner``, not
    ``filter=spec``).

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

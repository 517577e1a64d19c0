"""Entities as the catalog API returns them, as JSON text, remembered per generation.

An entity's stored body is written out with its relations without parsing and re-encoding
it, and kept so until the catalog next changes (``catalog.generation``), as are pages of
refs, counts and facets. The ``*_remembered`` functions give what is remembered, or None,
with no database work at all: a route can answer from them on the event loop. The others
read whatever is missing.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from sqlalchemy import Text, cast, select
from sqlmodel import Session, col

from catalog import generation, queries, service
from catalog.models import CatalogEntity
from catalog.refs import parse_ref
from portal.errors import InvalidInput

BODY_TEXT = cast(col(CatalogEntity.body), Text).label("body_text")


def entities(session: Session, ref_keys: Sequence[str]) -> dict[str, str | None]:
    """Each entity's JSON by lower-cased ref; None where the catalog has none."""

    def read(missing: list[tuple[str, str]]) -> dict[tuple[str, str], str | None]:
        refs = [ref for _, ref in missing]
        rows = session.execute(
            select(col(CatalogEntity.ref), BODY_TEXT).where(col(CatalogEntity.ref).in_(refs))
        )
        texts = {row.ref: row.body_text for row in rows}
        relations = service.relations_by_source(session, list(texts))
        return {
            key: with_relations(texts[key[1]], relations[key[1]]) if key[1] in texts else None
            for key in missing
        }

    found = generation.remembered_many(session, [_entity_key(key) for key in ref_keys], read)
    return {key[1]: value for key, value in found.items()}


def entities_remembered(session: Session, ref_keys: Sequence[str]) -> dict[str, str | None] | None:
    found = generation.peek(session, [_entity_key(key) for key in ref_keys])
    return None if found is None else {key[1]: value for key, value in found.items()}


def entity_by_uid(session: Session, uid: str) -> str | None:
    ref = session.execute(
        select(col(CatalogEntity.ref)).where(col(CatalogEntity.uid) == uid)
    ).scalar_one_or_none()
    return entities(session, [ref])[ref] if ref is not None else None


def page(session: Session, query: queries.Query, *, total: bool) -> queries.Page:
    """A page of ``query``, its rows the entities' JSON."""
    refs = generation.remembered(
        session,
        _page_key(query, total),
        lambda: _refs_of(queries.run(session, query, with_total=total, columns=_REF)),
    )
    return _with_texts(refs, entities(session, refs.rows))


def page_remembered(session: Session, query: queries.Query, *, total: bool) -> queries.Page | None:
    found = generation.peek(session, [_page_key(query, total)])
    refs = found[_page_key(query, total)] if found else None
    texts = entities_remembered(session, refs.rows) if refs else None
    return _with_texts(refs, texts) if refs is not None and texts is not None else None


def facets_remembered(
    session: Session, query: queries.Query, keys: Sequence[str]
) -> dict[str, list[dict[str, Any]]] | None:
    counted = generation.peek(
        session, [queries.facet_key(key, query, as_written=True) for key in keys]
    )
    return None if counted is None else queries.facets_of(keys, query, counted)


def ref_keys(refs: Sequence[str], *, field: str = "entityRefs") -> list[str]:
    """The lower-cased key of each ref, or InvalidInput naming the first that is not one."""
    keys = []
    for index, ref in enumerate(refs):
        key = _key_of(ref)
        keys.append(key if key is not None else parse_ref(ref, field=f"{field}[{index}]").key)
    return keys


def with_relations(body_text: str, relations: list[dict[str, Any]]) -> str:
    """The stored body's JSON with ``relations`` added, without parsing it."""
    head = body_text.rstrip()[:-1].rstrip()  # the object without its closing brace
    separator = "," if head != "{" else ""
    return f'{head}{separator}"relations":{json.dumps(relations, separators=(",", ":"))}}}'


_REF = (col(CatalogEntity.ref),)


def _entity_key(ref_key: str) -> tuple[str, str]:
    return ("entity", ref_key)


def _page_key(query: queries.Query, total: bool) -> tuple[str, str, bool]:
    return ("page", queries.page_key(query), total)


def _refs_of(found: queries.Page) -> queries.Page:
    return replace(found, rows=[row.ref for row in found.rows])


def _with_texts(refs: queries.Page, texts: dict[str, Any]) -> queries.Page:
    return replace(refs, rows=[text for ref in refs.rows if (text := texts[ref])])


@functools.lru_cache(maxsize=65536)
def _key_of(ref: str) -> str | None:
    """Parsing a ref costs microseconds; by-refs asks for a hundred at a time."""
    try:
        return parse_ref(ref).key
    except InvalidInput:
        return None

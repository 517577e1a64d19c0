"""Entity queries with Backstage's semantics: filters, full-text, ordering, fields, cursors.

``filter`` parameters: several are ORed, the comma-separated conditions inside one are
ANDed, ``key=value`` matches case-insensitively, a bare ``key`` means the field exists,
the same key twice in one filter matches either value, and ``relations.<type>=<ref>``
matches relations. Every condition is one indexed lookup in the search table.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, and_, exists, func, or_, select, true
from sqlalchemy.sql import Select
from sqlmodel import Session, col

from catalog.models import CatalogEntity, CatalogRelation, CatalogSearch
from portal.errors import InvalidInput

MAX_LIMIT = 10_000
# Columns kept on the entity row for the keys queried most.
COLUMN_KEYS = {
    "kind": CatalogEntity.kind_key,
    "metadata.name": CatalogEntity.name_key,
    "metadata.namespace": CatalogEntity.namespace_key,
}


@dataclass(frozen=True)
class Condition:
    key: str
    values: tuple[str, ...]  # empty: the key exists


Filter = tuple[tuple[Condition, ...], ...]  # OR of ANDs


@dataclass(frozen=True)
class Order:
    field: str
    ascending: bool = True


@dataclass(frozen=True)
class Query:
    """One by-query request; a cursor carries it to the next page."""

    filter: Filter = ()
    order: tuple[Order, ...] = ()
    full_text: str | None = None
    full_text_fields: tuple[str, ...] = ()
    limit: int = 20
    offset: int = 0


@dataclass(frozen=True)
class Page:
    rows: list[CatalogEntity]
    total: int
    next_cursor: str | None
    prev_cursor: str | None


def parse_filters(raw: Sequence[str], *, field: str = "filter") -> Filter:
    """``["kind=component,spec.type=service", "kind=api"]`` -> OR of ANDs."""
    alternatives: list[tuple[Condition, ...]] = []
    for index, text in enumerate(raw):
        by_key: dict[str, list[str]] = {}
        for part in text.split(","):
            part = part.strip()
            if not part:
                continue
            key, equals, value = part.partition("=")
            key = key.strip().lower()
            if not key:
                raise InvalidInput.for_field(
                    f"{field}[{index}]", f"{part!r} has no key", "key=value or key"
                )
            values = by_key.setdefault(key, [])
            if equals:
                values.append(value.strip().lower())
        if by_key:
            alternatives.append(
                tuple(Condition(key, tuple(values)) for key, values in by_key.items())
            )
    return tuple(alternatives)


def parse_order(raw: Sequence[str], *, field: str = "orderField") -> tuple[Order, ...]:
    """``["metadata.name,asc", "spec.type,desc"]``."""
    orders = []
    for index, text in enumerate(raw):
        name, _, direction = text.partition(",")
        direction = direction.strip().lower() or "asc"
        if not name.strip() or direction not in ("asc", "desc"):
            raise InvalidInput.for_field(
                f"{field}[{index}]", f"{text!r} is not an order", "field,asc or field,desc"
            )
        orders.append(Order(name.strip(), direction == "asc"))
    return tuple(orders)


def condition_clause(condition: Condition) -> ColumnElement[bool]:
    if condition.key.startswith("relations."):
        relation_type = condition.key.removeprefix("relations.")
        clause = and_(
            col(CatalogRelation.source_key) == col(CatalogEntity.ref),
            func.lower(col(CatalogRelation.type)) == relation_type,
        )
        if condition.values:
            clause = and_(clause, col(CatalogRelation.target_key).in_(condition.values))
        return exists(select(1).where(clause))
    column = COLUMN_KEYS.get(condition.key)
    if column is not None:
        if not condition.values:
            return true()
        return col(column).in_(condition.values)
    clause = and_(
        col(CatalogSearch.entity_uid) == col(CatalogEntity.uid),
        col(CatalogSearch.key) == condition.key,
    )
    if condition.values:
        clause = and_(clause, col(CatalogSearch.value).in_(condition.values))
    return exists(select(1).where(clause))


def filter_clause(filter_: Filter) -> ColumnElement[bool]:
    if not filter_:
        return true()
    return or_(*(and_(*(condition_clause(c) for c in conditions)) for conditions in filter_))


def full_text_clause(term: str, fields: Sequence[str]) -> ColumnElement[bool]:
    """Every word of ``term`` appears (case-insensitively) in the fields, or by default in
    names, titles, descriptions, tags, types and owners."""
    words = [word for word in term.lower().split() if word]
    if not words:
        return true()
    clauses: list[ColumnElement[bool]] = []
    for word in words:
        pattern = f"%{_escape_like(word)}%"
        if fields:
            clauses.append(
                exists(
                    select(1).where(
                        col(CatalogSearch.entity_uid) == col(CatalogEntity.uid),
                        col(CatalogSearch.key).in_([f.lower() for f in fields]),
                        col(CatalogSearch.value).like(pattern, escape="\\"),
                    )
                )
            )
        else:
            clauses.append(col(CatalogEntity.search_text).like(pattern, escape="\\"))
    return and_(*clauses)


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _order_expression(order: Order) -> Any:
    column = COLUMN_KEYS.get(order.field.lower())
    expression: Any = (
        col(column)
        if column is not None
        else select(func.min(col(CatalogSearch.value)))
        .where(
            col(CatalogSearch.entity_uid) == col(CatalogEntity.uid),
            col(CatalogSearch.key) == order.field.lower(),
        )
        .scalar_subquery()
    )
    return expression.asc() if order.ascending else expression.desc()


def where(query: Query) -> ColumnElement[bool]:
    clause = filter_clause(query.filter)
    if query.full_text:
        clause = and_(clause, full_text_clause(query.full_text, query.full_text_fields))
    return clause


def run(session: Session, query: Query, *, with_total: bool = True) -> Page:
    """One page of entities for ``query``, its total, and the cursors around it."""
    clause = where(query)
    statement: Select[Any] = select(CatalogEntity).where(clause)
    orders = [_order_expression(order) for order in query.order] or [
        col(CatalogEntity.kind_key).asc(),
        col(CatalogEntity.namespace_key).asc(),
        col(CatalogEntity.name_key).asc(),
    ]
    statement = statement.order_by(*orders, col(CatalogEntity.uid).asc())
    statement = statement.offset(query.offset).limit(query.limit)
    rows = list(session.execute(statement).scalars())
    total = (
        session.execute(select(func.count()).select_from(CatalogEntity).where(clause)).scalar_one()
        if with_total
        else len(rows)
    )
    next_offset = query.offset + query.limit
    next_cursor = encode_cursor(query, next_offset) if next_offset < total else None
    prev_cursor = (
        encode_cursor(query, max(query.offset - query.limit, 0)) if query.offset > 0 else None
    )
    return Page(rows, total, next_cursor, prev_cursor)


def encode_cursor(query: Query, offset: int) -> str:
    document = {
        "f": [[[c.key, list(c.values)] for c in conditions] for conditions in query.filter],
        "o": [[o.field, o.ascending] for o in query.order],
        "t": query.full_text,
        "tf": list(query.full_text_fields),
        "l": query.limit,
        "s": offset,
    }
    return base64.urlsafe_b64encode(json.dumps(document, separators=(",", ":")).encode()).decode()


def decode_cursor(cursor: str) -> Query:
    try:
        document = json.loads(base64.urlsafe_b64decode(cursor.encode()))
        return Query(
            filter=tuple(
                tuple(Condition(key, tuple(values)) for key, values in conditions)
                for conditions in document["f"]
            ),
            order=tuple(Order(name, bool(ascending)) for name, ascending in document["o"]),
            full_text=document["t"],
            full_text_fields=tuple(document["tf"]),
            limit=int(document["l"]),
            offset=int(document["s"]),
        )
    except (binascii.Error, ValueError, KeyError, TypeError) as exc:
        raise InvalidInput.for_field(
            "cursor", f"not a cursor this catalog gave ({type(exc).__name__})", "a pageInfo cursor"
        ) from None


def select_fields(entity: Mapping[str, Any], fields: Sequence[str]) -> dict[str, Any]:
    """Only the dotted ``fields`` of ``entity`` (Backstage's ``fields`` parameter)."""
    if not fields:
        return dict(entity)
    picked: dict[str, Any] = {}
    for path in fields:
        parts = path.split(".")
        value: Any = entity
        for part in parts:
            if not isinstance(value, Mapping) or part not in value:
                break
            value = value[part]
        else:
            target = picked
            for part in parts[:-1]:
                target = target.setdefault(part, {})
            target[parts[-1]] = value
    return picked


def parse_fields(raw: Sequence[str]) -> list[str]:
    return [field.strip() for text in raw for field in text.split(",") if field.strip()]

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
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy import ColumnElement, and_, exists, false, func, not_, or_, select, true
from sqlalchemy.orm import aliased
from sqlalchemy.sql import Select
from sqlmodel import Session, col

from catalog import generation
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
    # A predicate query (POST by-query): {key: value}, {key: {$in|$exists}}, $all/$any/$not.
    predicate: Any = None
    # The total counted for the first page, carried by the cursors to the next ones.
    total: int | None = None


@dataclass(frozen=True)
class Page:
    rows: list[Any]  # entities, or rows of the columns asked for
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


def predicate_clause(predicate: Any, path: str = "query") -> ColumnElement[bool]:
    """The SQL for a predicate query, as ``@backstage/catalog-client`` sends them:
    ``{"kind": "component", "spec.type": {"$in": ["service", "website"]},
    "$any": [...], "$all": [...], "$not": {...}, "spec.owner": {"$exists": true}}``;
    several keys in one object must all hold."""
    if not isinstance(predicate, Mapping):
        raise InvalidInput.for_field(path, f"{predicate!r} is not a predicate", "an object")
    clauses: list[ColumnElement[bool]] = []
    for key, value in predicate.items():
        where_ = f"{path}.{key}"
        if key in ("$all", "$any"):
            if not isinstance(value, list):
                raise InvalidInput.for_field(where_, "not a list", "a list of predicates")
            inner = [predicate_clause(item, f"{where_}[{i}]") for i, item in enumerate(value)]
            clauses.append(and_(true(), *inner) if key == "$all" else or_(false(), *inner))
        elif key == "$not":
            clauses.append(not_(predicate_clause(value, where_)))
        elif key.startswith("$"):
            raise InvalidInput.for_field(where_, f"{key} is not an operator", "$all, $any or $not")
        else:
            clauses.append(_value_clause(key, value, where_))
    return and_(true(), *clauses)


def _value_clause(key: str, value: Any, path: str) -> ColumnElement[bool]:
    if isinstance(value, Mapping):
        if set(value) == {"$exists"}:
            exists_clause = condition_clause(Condition(key.lower(), ()))
            return exists_clause if value["$exists"] else not_(exists_clause)
        if set(value) == {"$in"} and isinstance(value["$in"], list):
            values = tuple(_search_value(item) for item in value["$in"])
            if not values:
                return false()
            return condition_clause(Condition(key.lower(), values))
        raise InvalidInput.for_field(
            path, f"{dict(value)!r} is not a condition", "a value, {$in: [...]} or {$exists: bool}"
        )
    return condition_clause(Condition(key.lower(), (_search_value(value),)))


def _search_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | int | float):
        return str(value).lower()
    raise InvalidInput.for_field(
        "query", f"{value!r} is not a value", "a string, number or boolean"
    )


def where(query: Query) -> ColumnElement[bool]:
    clause = filter_clause(query.filter)
    if query.predicate is not None:
        clause = and_(clause, predicate_clause(query.predicate))
    if query.full_text:
        clause = and_(clause, full_text_clause(query.full_text, query.full_text_fields))
    return clause


def run(
    session: Session, query: Query, *, with_total: bool = True, columns: Sequence[Any] = ()
) -> Page:
    """One page of entities for ``query``, its total, and the cursors around it.

    The total is counted once per catalog generation (a count costs time in proportion to
    the entities matched) and travels in the cursors, as Backstage's do. The rows are
    entities, or rows of ``columns`` when given."""
    clause = where(query)
    statement: Select[Any] = select(*columns) if columns else select(CatalogEntity)
    statement = statement.where(clause)
    orders = [_order_expression(order) for order in query.order] or [
        col(CatalogEntity.kind_key).asc(),
        col(CatalogEntity.namespace_key).asc(),
        col(CatalogEntity.name_key).asc(),
    ]
    statement = statement.order_by(*orders, col(CatalogEntity.uid).asc())
    # One row more than asked: whether a next page exists, without counting.
    statement = statement.offset(query.offset).limit(query.limit + 1)
    found = session.execute(statement)
    rows = list(found if columns else found.scalars())
    has_more = len(rows) > query.limit
    rows = rows[: query.limit]
    if not with_total:
        total = query.offset + len(rows)  # a lower bound: the caller asked not to count
    elif query.total is not None:
        total = query.total
    else:
        total = generation.remembered(
            session,
            ("count", _cache_key(query)),
            lambda: int(
                session.execute(
                    select(func.count()).select_from(CatalogEntity).where(clause)
                ).scalar_one()
            ),
        )
    counted = replace(query, total=total if with_total else None)
    next_cursor = encode_cursor(counted, query.offset + query.limit) if has_more else None
    prev_cursor = (
        encode_cursor(counted, max(query.offset - query.limit, 0)) if query.offset > 0 else None
    )
    return Page(rows, total, next_cursor, prev_cursor)


def _document(query: Query) -> dict[str, Any]:
    return {
        "f": [[[c.key, list(c.values)] for c in conditions] for conditions in query.filter],
        "o": [[o.field, o.ascending] for o in query.order],
        "t": query.full_text,
        "tf": list(query.full_text_fields),
        # Under this name so @backstage/catalog-client follows the cursor with a POST.
        "query": query.predicate,
    }


def _cache_key(query: Query) -> str:
    """What the entities ``query`` matches depend on: not its page, order or total."""
    document = _document(query)
    del document["o"]
    return json.dumps(document, sort_keys=True, separators=(",", ":"))


def page_key(query: Query) -> str:
    """Everything one page of ``query`` depends on."""
    document = {**_document(query), "l": query.limit, "s": query.offset, "n": query.total}
    return json.dumps(document, sort_keys=True, separators=(",", ":"))


def encode_cursor(query: Query, offset: int) -> str:
    document = {**_document(query), "l": query.limit, "s": offset, "n": query.total}
    return base64.b64encode(json.dumps(document, separators=(",", ":")).encode()).decode()


def decode_cursor(cursor: str) -> Query:
    try:
        document = json.loads(base64.b64decode(cursor.encode(), validate=True))
        total = document.get("n")
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
            predicate=document.get("query"),
            total=int(total) if total is not None else None,
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


# -- Facets -------------------------------------------------------------------------------


def facets(session: Session, query: Query, keys: Sequence[str]) -> dict[str, list[dict[str, Any]]]:
    """For each key, the values the entities matching ``query`` have, as written, with how
    many have each, most frequent first (Backstage's ``entity-facets``: ``[{value, count}]``)."""
    counted = {
        facet_key(key, query, as_written=True): _counted(
            session, key.lower(), query, as_written=True
        )
        for key in keys
    }
    return facets_of(keys, query, counted)


def facets_of(
    keys: Sequence[str], query: Query, counted: Mapping[Any, list[tuple[str, int]]]
) -> dict[str, list[dict[str, Any]]]:
    """Backstage's facets from the counts remembered by :func:`facet_key`."""
    found: dict[str, list[dict[str, Any]]] = {}
    for key in keys:
        pairs = sorted(counted[facet_key(key, query, as_written=True)], key=lambda p: (-p[1], p[0]))
        found[key] = [{"value": value, "count": count} for value, count in pairs]
    return found


def facet_counts(
    session: Session, query: Query, keys: Sequence[str]
) -> dict[str, list[tuple[str, int]]]:
    """How many entities matching ``query`` have each value of each of ``keys``, for the
    catalog page's filters: ``{key: [(value, count), ...]}``, values lower-cased (as
    filters match them) and sorted.

    ``query``'s own conditions on a key are left out when that key is counted, so with
    ``kind=component`` chosen the kind facet still says how many entities every other kind
    has under the remaining filters (and the full-text term). ``relations.<type>`` counts
    relation targets: ``relations.ownedBy`` gives each owner and how many entities it owns.
    """
    counted: dict[str, list[tuple[str, int]]] = {}
    for key in keys:
        lowered = key.lower()
        others = replace(query, filter=_without_key(query.filter, lowered))
        counted[key] = _counted(session, lowered, others, as_written=False)
    return counted


def _counted(
    session: Session, key: str, query: Query, *, as_written: bool
) -> list[tuple[str, int]]:
    """``[(value, entities with it)]`` for ``key`` among the entities matching ``query``,
    sorted by value; remembered for the catalog's generation."""

    def count() -> list[tuple[str, int]]:
        matching = where(query)
        statement: Any  # three shapes of one two-column select
        if key.startswith("relations."):
            # Aliased: the filter's EXISTS subqueries on these tables must not correlate
            # with the rows being counted.
            relation = aliased(CatalogRelation)
            value: Any = col(relation.target_ref if as_written else relation.target_key)
            statement = select(value, func.count(func.distinct(col(relation.source_key)))).where(
                func.lower(col(relation.type)) == key.removeprefix("relations."),
                col(relation.source_key).in_(select(col(CatalogEntity.ref)).where(matching)),
            )
        elif key in COLUMN_KEYS and not as_written:
            value = col(COLUMN_KEYS[key])
            statement = select(value, func.count()).select_from(CatalogEntity).where(matching)
        else:
            row = aliased(CatalogSearch)
            value = col(row.original_value if as_written else row.value)
            statement = select(value, func.count(func.distinct(col(row.entity_uid)))).where(
                col(row.key) == key,
                value.is_not(None),
                col(row.entity_uid).in_(select(col(CatalogEntity.uid)).where(matching)),
            )
        found = session.execute(statement.group_by(value).order_by(value))
        return [(str(found_value), int(number)) for found_value, number in found]

    return generation.remembered(session, facet_key(key, query, as_written=as_written), count)


def facet_key(key: str, query: Query, *, as_written: bool) -> tuple[str, str, bool, str]:
    """What a facet's counts are remembered by."""
    return ("facet", key.lower(), as_written, _cache_key(query))


def _without_key(filter_: Filter, key: str) -> Filter:
    """``filter_`` without its conditions on ``key``; an alternative left empty matches all."""
    alternatives = tuple(
        tuple(condition for condition in conditions if condition.key != key)
        for conditions in filter_
    )
    if any(not conditions for conditions in alternatives):
        return ()
    return alternatives

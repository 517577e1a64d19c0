"""The catalog API's entity routes: queries, lookups, facets, ancestry and validation."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from sqlmodel import Session

from catalog import actions, answers, queries, service, validation
from catalog.api.shapes import (
    JSON_TYPE,
    EntitiesPage,
    FieldsParam,
    FilterParam,
    PageInfo,
    settings_of,
)
from catalog.refs import EntityRef
from portal import requires
from portal.db import SessionDep, read_only
from portal.errors import NotFound

router = APIRouter()


def _with_relations(session: Session, rows: list[Any], fields: list[str]) -> list[dict[str, Any]]:
    """The entities as the API returns them, narrowed to ``fields`` (all when empty)."""
    texts = answers.entities(session, [row.ref for row in rows])
    return [queries.select_fields(json.loads(texts[row.ref] or "{}"), fields) for row in rows]


def _page_response(page: queries.Page) -> Response:
    """A page whose rows are entities' JSON, answered as Backstage's by-query shape."""
    page_info = PageInfo(nextCursor=page.next_cursor, prevCursor=page.prev_cursor)
    rest = json.dumps({"totalItems": page.total, "pageInfo": page_info.model_dump()})
    return Response('{"items":[' + ",".join(page.rows) + "]," + rest[1:], media_type=JSON_TYPE)


def _entities_page(
    session: Session, query: queries.Query, fields: list[str], *, total: bool
) -> Any:
    if not fields:
        return _page_response(answers.page(session, query, total=total))
    page = queries.run(session, query, with_total=total)
    return EntitiesPage(
        items=_with_relations(session, page.rows, fields),
        totalItems=page.total,
        pageInfo=PageInfo(nextCursor=page.next_cursor, prevCursor=page.prev_cursor),
    )


def _entity_response(text: str | None, named: str) -> Response:
    if text is None:
        raise NotFound(f"there is no entity {named}")
    return Response(text, media_type=JSON_TYPE)


def _refs_response(keys: Sequence[str | None], texts: Mapping[str, str | None]) -> Response:
    items = [(texts[key] if key else None) or "null" for key in keys]
    return Response('{"items":[' + ",".join(items) + "]}", media_type=JSON_TYPE)


@router.get("/entities", dependencies=[requires(actions.ENTITY_READ)])
def list_entities(
    session: SessionDep,
    filter: FilterParam = [],  # noqa: B006 (Backstage's parameter name)
    fields: FieldsParam = [],  # noqa: B006
    limit: Annotated[int | None, Query(ge=0, le=queries.MAX_LIMIT)] = None,
    offset: Annotated[int, Query(ge=0)] = 0,
    order: Annotated[list[str], Query(description="`asc:field` or `desc:field`.")] = [],  # noqa: B006
) -> list[dict[str, Any]]:
    """Entities matching the filters, as a plain list (Backstage's original list route)."""
    orders = tuple(
        queries.Order(field, direction != "desc")
        for direction, _, field in (text.partition(":") for text in order)
    )
    query = queries.Query(
        filter=queries.parse_filters(filter),
        order=orders,
        limit=limit if limit is not None else queries.MAX_LIMIT,
        offset=offset,
    )
    page = queries.run(session, query, with_total=False)
    return _with_relations(session, page.rows, queries.parse_fields(fields))


@router.get(
    "/entities/by-query",
    response_model=EntitiesPage,
    dependencies=[requires(actions.ENTITY_READ)],
)
async def query_entities(
    session: SessionDep,
    filter: FilterParam = [],  # noqa: B006
    fields: FieldsParam = [],  # noqa: B006
    orderField: Annotated[  # noqa: N803
        list[str], Query(description="`field,asc` or `field,desc`; repeatable.")
    ] = [],  # noqa: B006
    fullTextFilterTerm: str | None = None,  # noqa: N803
    fullTextFilterFields: Annotated[list[str], Query()] = [],  # noqa: N803, B006
    limit: Annotated[int, Query(ge=0, le=queries.MAX_LIMIT)] = 20,
    offset: Annotated[int, Query(ge=0)] = 0,
    cursor: str | None = None,
    totalItems: Annotated[  # noqa: N803
        Literal["include", "exclude"], Query(description="`exclude` skips counting.")
    ] = "include",
) -> Any:
    """A page of entities with the total and cursors; a cursor carries the whole query."""
    if cursor:
        query = queries.decode_cursor(cursor)
    else:
        query = queries.Query(
            filter=queries.parse_filters(filter),
            order=queries.parse_order(orderField),
            full_text=fullTextFilterTerm,
            full_text_fields=tuple(queries.parse_fields(fullTextFilterFields)),
            limit=limit,
            offset=offset,
        )
    picked = queries.parse_fields(fields)
    counted = totalItems == "include"
    remembered = None if picked else answers.page_remembered(session, query, total=counted)
    if remembered is not None:
        return _page_response(remembered)
    return await read_only(session, lambda: _entities_page(session, query, picked, total=counted))


@router.get(
    "/entities/by-uid/{uid}",
    response_model=dict[str, Any],
    dependencies=[requires(actions.ENTITY_READ)],
)
async def entity_by_uid(uid: str, session: SessionDep) -> Response:
    text = await read_only(session, lambda: answers.entity_by_uid(session, uid))
    return _entity_response(text, f"with uid {uid}")


@router.delete(
    "/entities/by-uid/{uid}", status_code=204, dependencies=[requires(actions.ENTITY_DELETE)]
)
def delete_entity(uid: str, session: SessionDep) -> Response:
    """Remove an entity (its location emits it again on the next refresh if still there)."""
    service.delete_entity(session, uid)
    return Response(status_code=204)


@router.get(
    "/entities/by-name/{kind}/{namespace}/{name}",
    response_model=dict[str, Any],
    dependencies=[requires(actions.ENTITY_READ)],
)
async def entity_by_name(kind: str, namespace: str, name: str, session: SessionDep) -> Response:
    ref = EntityRef(kind, namespace, name)
    texts = await _entities(session, [ref.key])
    return _entity_response(texts[ref.key], str(ref))


async def _entities(session: Session, keys: list[str]) -> Mapping[str, str | None]:
    """Entities' JSON, from memory on the event loop, or else read in the thread pool."""
    remembered = answers.entities_remembered(session, keys)
    if remembered is not None:
        return remembered
    return await read_only(session, lambda: answers.entities(session, keys))


class EntityRefsIn(BaseModel):
    entityRefs: list[str] = Field(max_length=queries.MAX_LIMIT)  # noqa: N815
    fields: list[str] = Field(default_factory=list)
    query: dict[str, Any] | None = Field(
        None, description="A predicate the entities must also match; others come back null."
    )


class EntityRefsOut(BaseModel):
    items: list[dict[str, Any] | None]


@router.post(
    "/entities/by-refs",
    response_model=EntityRefsOut,
    dependencies=[requires(actions.ENTITY_READ)],
)
async def entities_by_refs(
    body: EntityRefsIn,
    session: SessionDep,
    filter: FilterParam = [],  # noqa: B006
) -> Any:
    """The entities for ``entityRefs``, in the same order; null where there is none (or
    where it does not match ``filter`` or ``query``)."""
    if not (filter or body.query or body.fields):
        keys = answers.ref_keys(body.entityRefs)
        return _refs_response(keys, await _entities(session, keys))
    return await read_only(session, lambda: _filtered_by_refs(session, body, filter))


def _filtered_by_refs(session: Session, body: EntityRefsIn, filter: list[str]) -> Any:
    matching = queries.where(
        queries.Query(filter=queries.parse_filters(filter), predicate=body.query)
    )
    found = service.entities_by_refs(session, body.entityRefs, matching=matching)
    rows = [row for row in found if row is not None]
    if body.fields:
        shaped = iter(_with_relations(session, rows, body.fields))
        return EntityRefsOut(items=[next(shaped) if row is not None else None for row in found])
    keys = [row.ref if row is not None else None for row in found]
    return _refs_response(keys, answers.entities(session, [row.ref for row in rows]))


class RefreshIn(BaseModel):
    entityRef: str  # noqa: N815


@router.post("/refresh", dependencies=[requires(actions.ENTITY_REFRESH)])
def refresh(body: RefreshIn, request: Request, session: SessionDep) -> Response:
    """Read the entity's location again now."""
    service.refresh_entity(session, body.entityRef, settings_of(request).catalog)
    return Response(status_code=200)


class OrderBy(BaseModel):
    field: str
    order: Literal["asc", "desc"] = "asc"


class FullTextFilter(BaseModel):
    term: str = ""
    fields: list[str] = Field(default_factory=list)


class PredicateQueryIn(BaseModel):
    cursor: str | None = None
    limit: int = Field(20, ge=0, le=queries.MAX_LIMIT)
    offset: int = Field(0, ge=0)
    orderBy: list[OrderBy] = Field(default_factory=list)  # noqa: N815
    fullTextFilter: FullTextFilter | None = None  # noqa: N815
    fields: list[str] = Field(default_factory=list)
    totalItems: Literal["include", "exclude"] = "include"  # noqa: N815
    query: dict[str, Any] | None = None


@router.post(
    "/entities/by-query",
    response_model=EntitiesPage,
    dependencies=[requires(actions.ENTITY_READ)],
)
async def query_entities_by_predicate(body: PredicateQueryIn, session: SessionDep) -> Any:
    """Entities matching a predicate query (``$all``, ``$any``, ``$not``, ``$in``,
    ``$exists``), paged like the GET form; its cursors carry the predicate."""
    if body.cursor:
        query = queries.decode_cursor(body.cursor)
    else:
        query = queries.Query(
            order=tuple(queries.Order(o.field, o.order == "asc") for o in body.orderBy),
            full_text=body.fullTextFilter.term if body.fullTextFilter else None,
            full_text_fields=tuple(body.fullTextFilter.fields) if body.fullTextFilter else (),
            limit=body.limit,
            offset=body.offset,
            predicate=body.query,
        )
    counted = body.totalItems == "include"
    remembered = None if body.fields else answers.page_remembered(session, query, total=counted)
    if remembered is not None:
        return _page_response(remembered)
    return await read_only(
        session, lambda: _entities_page(session, query, body.fields, total=counted)
    )


class FacetsOut(BaseModel):
    facets: dict[str, list[dict[str, Any]]]


@router.get("/entity-facets", dependencies=[requires(actions.ENTITY_READ)])
async def entity_facets(
    session: SessionDep,
    facet: Annotated[list[str], Query(min_length=1, description="Dotted fields, repeatable.")],
    filter: FilterParam = [],  # noqa: B006
) -> FacetsOut:
    """For each facet, the values entities have and how many have each."""
    query = queries.Query(filter=queries.parse_filters(filter))
    return await _facets(session, query, facet)


async def _facets(session: Session, query: queries.Query, keys: list[str]) -> FacetsOut:
    counted = answers.facets_remembered(session, query, keys)
    if counted is None:
        counted = await read_only(session, lambda: queries.facets(session, query, keys))
    return FacetsOut(facets=counted)


class FacetsIn(BaseModel):
    facets: list[str] = Field(min_length=1)
    query: dict[str, Any] | None = None


@router.post("/entity-facets", dependencies=[requires(actions.ENTITY_READ)])
async def entity_facets_by_predicate(body: FacetsIn, session: SessionDep) -> FacetsOut:
    return await _facets(session, queries.Query(predicate=body.query), body.facets)


class AncestryItem(BaseModel):
    entity: dict[str, Any]
    parentEntityRefs: list[str]  # noqa: N815


class AncestryOut(BaseModel):
    rootEntityRef: str  # noqa: N815
    items: list[AncestryItem]


@router.get(
    "/entities/by-name/{kind}/{namespace}/{name}/ancestry",
    dependencies=[requires(actions.ENTITY_READ)],
)
def entity_ancestry(kind: str, namespace: str, name: str, session: SessionDep) -> AncestryOut:
    """The entity and the Location entities that led to it, up to its registered location."""
    root, chain = service.ancestry(session, EntityRef(kind, namespace, name))
    shaped = _with_relations(session, [entity for entity, _ in chain], [])
    return AncestryOut(
        rootEntityRef=root,
        items=[
            AncestryItem(entity=body, parentEntityRefs=parents)
            for body, (_, parents) in zip(shaped, chain, strict=True)
        ],
    )


class ValidateIn(BaseModel):
    location: str = Field(description="Where the entity comes from, e.g. `url:https://...`.")
    entity: dict[str, Any]


@router.post("/validate-entity", dependencies=[requires(actions.ENTITY_CREATE)])
def validate_entity(body: ValidateIn, request: Request) -> Response:
    """Check an entity as ingestion would (a Location's targets must be readable under the
    same rules); 200 when valid, else 400 with ``errors`` as Backstage answers."""
    problems = service.check_entity(body.entity, body.location, settings_of(request).catalog)
    if not problems:
        return Response(status_code=200)
    return JSONResponse(
        status_code=400,
        content={
            "errors": [
                {
                    "name": "InputError",
                    "message": f"{p.field}: {p.message}" if p.field else p.message,
                    "field": p.field,
                    "expected": p.expected,
                }
                for p in problems
            ]
        },
    )


@router.get("/schemas/{kind}", dependencies=[requires(actions.ENTITY_READ)])
def kind_schema(kind: str) -> dict[str, Any]:
    """The JSON schema of one of Paved's own kinds (``Model``, ``Dataset``), for editors
    and CI checks of ``catalog-info.yaml`` files."""
    return validation.kind_schema(kind)

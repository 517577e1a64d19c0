"""The catalog REST API under ``/api/catalog``, with the routes and shapes of Backstage's
catalog backend, so ``@backstage/catalog-client`` and existing scripts work unchanged."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field, SerializerFunctionWrapHandler, model_serializer
from sqlmodel import Session

from catalog import actions, answers, queries, service, validation
from catalog.models import CatalogLocation
from catalog.refs import EntityRef
from portal import Identity, requires
from portal.db import SessionDep, read_only
from portal.errors import NotFound
from portal.problems import use_backstage_statuses
from portal.settings import Settings

router = APIRouter(
    prefix="/api/catalog", tags=["catalog"], dependencies=[Depends(use_backstage_statuses)]
)

JSON_TYPE = "application/json"
FilterParam = Annotated[
    list[str],
    Query(
        description="Conditions `key=value` (or a bare `key`), comma-separated (ANDed); "
        "repeat the parameter to OR them."
    ),
]
FieldsParam = Annotated[
    list[str], Query(description="Dotted fields to return, e.g. `kind,metadata.name`.")
]


def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def _with_relations(session: Session, rows: list[Any], fields: list[str]) -> list[dict[str, Any]]:
    relations = service.relations_by_source(session, [row.ref for row in rows])
    return [
        queries.select_fields(service.as_api_entity(row, relations[row.ref]), fields)
        for row in rows
    ]


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


class Compact(BaseModel):
    """A shape whose missing (None) fields are left out, as Backstage's schemas want."""

    @model_serializer(mode="wrap")
    def _without_missing(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        return {key: value for key, value in handler(self).items() if value is not None}


class PageInfo(Compact):
    """Cursors to the pages around this one."""

    nextCursor: str | None = None  # noqa: N815 (Backstage's field names)
    prevCursor: str | None = None  # noqa: N815


class EntitiesPage(BaseModel):
    items: list[dict[str, Any]]
    totalItems: int  # noqa: N815
    pageInfo: PageInfo  # noqa: N815


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
    service.refresh_entity(session, body.entityRef, _settings(request).catalog)
    return Response(status_code=200)


# -- Locations ----------------------------------------------------------------------------


class LocationIn(BaseModel):
    type: Literal["file", "url"] = Field(description="`file` or `url`.")
    target: str = Field(min_length=1, max_length=2000)


class LocationOut(BaseModel):
    id: str
    type: str
    target: str
    entityRef: str  # noqa: N815 (Backstage's name)

    @classmethod
    def of(cls, location: CatalogLocation) -> LocationOut:
        return cls(
            id=location.id,
            type=location.type,
            target=location.target,
            entityRef=service.location_entity_ref(location),
        )


class LocationWrapped(BaseModel):
    data: LocationOut


class LocationCreated(Compact):
    location: LocationOut
    entities: list[dict[str, Any]]
    exists: bool | None = None


@router.get("/locations", dependencies=[requires(actions.LOCATION_READ)])
def list_locations(session: SessionDep) -> list[LocationWrapped]:
    """Every registered location, as ``[{data: {id, type, target}}]`` like Backstage."""
    return [
        LocationWrapped(data=LocationOut.of(location))
        for location in service.list_locations(session)
    ]


@router.post("/locations", status_code=201)
def add_location(
    body: LocationIn,
    request: Request,
    session: SessionDep,
    identity: Annotated[Identity, requires(actions.LOCATION_CREATE)],
    dryRun: bool = False,  # noqa: N803
) -> LocationCreated:
    """Register a location and read it now; ``dryRun=true`` only shows what it would add."""
    registered = service.add_location(
        session,
        body.type,
        body.target,
        by=identity.ref,
        settings=_settings(request).catalog,
        dry_run=dryRun,
    )
    return LocationCreated(
        location=LocationOut.of(registered.location),
        entities=registered.entities,
        exists=registered.exists if dryRun else None,
    )


@router.get("/locations/{location_id}", dependencies=[requires(actions.LOCATION_READ)])
def get_location(location_id: str, session: SessionDep) -> LocationOut:
    return LocationOut.of(service.get_location(session, location_id))


@router.delete(
    "/locations/{location_id}",
    status_code=204,
    dependencies=[requires(actions.LOCATION_DELETE)],
)
def delete_location(location_id: str, session: SessionDep) -> Response:
    """Remove a location and the entities it emitted."""
    service.delete_location(session, location_id)
    return Response(status_code=204)


@router.get(
    "/locations/by-entity/{kind}/{namespace}/{name}",
    dependencies=[requires(actions.LOCATION_READ)],
)
def location_by_entity(kind: str, namespace: str, name: str, session: SessionDep) -> LocationOut:
    location = service.location_of_entity(session, EntityRef(kind, namespace, name))
    return LocationOut.of(location)


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


class LocationsQueryIn(BaseModel):
    cursor: str | None = None
    limit: int = Field(100, ge=1, le=queries.MAX_LIMIT)
    query: dict[str, Any] | None = None


class LocationsPageInfo(PageInfo):
    pass


class LocationsPage(BaseModel):
    items: list[LocationOut]
    totalItems: int  # noqa: N815
    pageInfo: LocationsPageInfo  # noqa: N815


@router.post("/locations/by-query", dependencies=[requires(actions.LOCATION_READ)])
def query_locations(body: LocationsQueryIn, session: SessionDep) -> LocationsPage:
    """Registered locations matching a predicate on ``id``, ``type`` and ``target``."""
    found = service.query_locations(session, body.query, cursor=body.cursor, limit=body.limit)
    return LocationsPage(
        items=[LocationOut.of(location) for location in found.items],
        totalItems=found.total,
        pageInfo=LocationsPageInfo(nextCursor=found.next_cursor),
    )


@router.put("/locations/{location_id}", dependencies=[requires(actions.LOCATION_CREATE)])
def update_location(
    location_id: str, body: LocationIn, request: Request, session: SessionDep
) -> LocationOut:
    """Point a registered location somewhere else, and read it there now."""
    location = service.update_location(
        session, location_id, body.type, body.target, settings=_settings(request).catalog
    )
    return LocationOut.of(location)


class AnalyzeIn(BaseModel):
    location: LocationIn
    catalogFileName: str | None = None  # noqa: N815


@router.post("/analyze-location", dependencies=[requires(actions.ENTITY_CREATE)])
def analyze_location(body: AnalyzeIn, request: Request, session: SessionDep) -> dict[str, Any]:
    """What registering a location would find: each entity, where, and whether the catalog
    has it already. Nothing is registered."""
    return service.analyze_location(
        session, body.location.type, body.location.target, settings=_settings(request).catalog
    )


class ValidateIn(BaseModel):
    location: str = Field(description="Where the entity comes from, e.g. `url:https://...`.")
    entity: dict[str, Any]


@router.post("/validate-entity", dependencies=[requires(actions.ENTITY_CREATE)])
def validate_entity(body: ValidateIn, request: Request) -> Response:
    """Check an entity as ingestion would (a Location's targets must be readable under the
    same rules); 200 when valid, else 400 with ``errors`` as Backstage answers."""
    problems = service.check_entity(body.entity, body.location, _settings(request).catalog)
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

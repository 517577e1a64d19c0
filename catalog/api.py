"""The catalog REST API under ``/api/catalog``, with the routes and shapes of Backstage's
catalog backend, so ``@backstage/catalog-client`` and existing scripts work unchanged."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request, Response
from pydantic import BaseModel, Field
from sqlmodel import Session

from catalog import actions, queries, service
from catalog.refs import EntityRef
from portal import Identity, requires
from portal.db import SessionDep
from portal.settings import Settings

router = APIRouter(prefix="/api/catalog", tags=["catalog"])

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


class PageInfo(BaseModel):
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


@router.get("/entities/by-query", dependencies=[requires(actions.ENTITY_READ)])
def query_entities(
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
) -> EntitiesPage:
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
    page = queries.run(session, query)
    return EntitiesPage(
        items=_with_relations(session, page.rows, queries.parse_fields(fields)),
        totalItems=page.total,
        pageInfo=PageInfo(nextCursor=page.next_cursor, prevCursor=page.prev_cursor),
    )


@router.get("/entities/by-uid/{uid}", dependencies=[requires(actions.ENTITY_READ)])
def entity_by_uid(uid: str, session: SessionDep) -> dict[str, Any]:
    row = service.get_entity_by_uid(session, uid)
    return _with_relations(session, [row], [])[0]


@router.delete(
    "/entities/by-uid/{uid}", status_code=204, dependencies=[requires(actions.ENTITY_DELETE)]
)
def delete_entity(uid: str, session: SessionDep) -> Response:
    """Remove an entity (its location emits it again on the next refresh if still there)."""
    service.delete_entity(session, uid)
    return Response(status_code=204)


@router.get(
    "/entities/by-name/{kind}/{namespace}/{name}", dependencies=[requires(actions.ENTITY_READ)]
)
def entity_by_name(kind: str, namespace: str, name: str, session: SessionDep) -> dict[str, Any]:
    row = service.get_entity(session, EntityRef(kind, namespace, name))
    return _with_relations(session, [row], [])[0]


class EntityRefsIn(BaseModel):
    entityRefs: list[str] = Field(max_length=queries.MAX_LIMIT)  # noqa: N815
    fields: list[str] = Field(default_factory=list)


class EntityRefsOut(BaseModel):
    items: list[dict[str, Any] | None]


@router.post("/entities/by-refs", dependencies=[requires(actions.ENTITY_READ)])
def entities_by_refs(body: EntityRefsIn, session: SessionDep) -> EntityRefsOut:
    """The entities for ``entityRefs``, in the same order; null where there is none."""
    found = service.entities_by_refs(session, body.entityRefs)
    rows = [row for row in found if row is not None]
    shaped = iter(_with_relations(session, rows, body.fields))
    return EntityRefsOut(items=[next(shaped) if row is not None else None for row in found])


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


class LocationWrapped(BaseModel):
    data: LocationOut


class LocationCreated(BaseModel):
    location: LocationOut
    entities: list[dict[str, Any]]
    exists: bool | None = None


@router.get("/locations", dependencies=[requires(actions.LOCATION_READ)])
def list_locations(session: SessionDep) -> list[LocationWrapped]:
    """Every registered location, as ``[{data: {id, type, target}}]`` like Backstage."""
    return [
        LocationWrapped(data=LocationOut.model_validate(location, from_attributes=True))
        for location in service.list_locations(session)
    ]


@router.post("/locations", status_code=201)
def add_location(
    body: LocationIn,
    request: Request,
    response: Response,
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
    if dryRun:
        response.status_code = 200
    return LocationCreated(
        location=LocationOut.model_validate(registered.location, from_attributes=True),
        entities=registered.entities,
        exists=registered.exists if dryRun else None,
    )


@router.get("/locations/{location_id}", dependencies=[requires(actions.LOCATION_READ)])
def get_location(location_id: str, session: SessionDep) -> LocationOut:
    return LocationOut.model_validate(
        service.get_location(session, location_id), from_attributes=True
    )


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
    return LocationOut.model_validate(location, from_attributes=True)

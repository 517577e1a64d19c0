"""The catalog API's location routes: registering, reading, changing and analysing them."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, Field

from catalog import actions, queries, service
from catalog.api.shapes import (
    Compact,
    PageInfo,
    settings_of,
)
from catalog.models import CatalogLocation
from catalog.refs import EntityRef
from portal import Identity, requires
from portal.db import SessionDep

router = APIRouter()


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
        settings=settings_of(request).catalog,
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
        session, location_id, body.type, body.target, settings=settings_of(request).catalog
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
        session, body.location.type, body.location.target, settings=settings_of(request).catalog
    )

"""The catalog's policy actions."""

from __future__ import annotations

from portal import Action

ENTITY_READ = Action("catalog.entity.read", "See catalog entities, their relations and facets")
ENTITY_CREATE = Action("catalog.entity.create", "Check or analyse entities before registering")
ENTITY_DELETE = Action("catalog.entity.delete", "Remove an entity from the catalog")
ENTITY_REFRESH = Action("catalog.entity.refresh", "Have an entity's location read again now")
LOCATION_READ = Action("catalog.location.read", "See the locations the catalog reads from")
LOCATION_CREATE = Action("catalog.location.create", "Register a location to read entities from")
LOCATION_DELETE = Action("catalog.location.delete", "Remove a location and its entities")

CATALOG_ACTIONS = [
    ENTITY_READ,
    ENTITY_CREATE,
    ENTITY_DELETE,
    ENTITY_REFRESH,
    LOCATION_READ,
    LOCATION_CREATE,
    LOCATION_DELETE,
]

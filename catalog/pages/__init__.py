"""The catalog's pages: the entity table with filters and facet counts, entity pages with
their relations drawn, and registering an existing component.

Every page works without JavaScript (GET forms, links, POST forms); with htmx, filtering,
searching, sorting and paging swap only the results, and entity tabs swap only the tab.

``table.py`` serves ``/catalog`` (facets, search, sorting, paging), ``register.py`` the
register form with its dry run, and ``entity.py`` each entity's page and tabs; ``links.py``
names and links entities for all three, and ``rendering.py`` renders a page or, for an htmx
swap, only its fragment. Each module has its own router; :data:`router` holds them all
under ``/catalog``.
"""

from __future__ import annotations

from fastapi import APIRouter

from catalog.pages import entity, register, table
from catalog.pages.entity import entity_view
from catalog.pages.links import entity_url, kind_label, short_ref
from catalog.pages.register import preview_location

__all__ = ["entity_url", "entity_view", "kind_label", "preview_location", "router", "short_ref"]

router = APIRouter(include_in_schema=False)
# The table's route is "/catalog" itself, so the prefix is given here, not on this router.
for _module in (table, register, entity):
    router.include_router(_module.router, prefix="/catalog")

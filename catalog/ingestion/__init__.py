"""Ingestion: read a registered location's tree of files, then apply it in one transaction.

Reading (``reading.py``) follows Location entities to the locations they name (loops and
depth are refused), validates every document, and collects problems instead of stopping
at the first. Applying (``applying.py``) compares what was read with what the catalog
holds for that location: new and changed entities are written with their search rows
(``search.py``) and relations, unchanged ones cost nothing, the ones no longer emitted
are marked orphans, and an entity another location already owns is a conflict on this
one. A location that cannot be read at all changes nothing but its error.
"""

from __future__ import annotations

from sqlmodel import Session

from catalog.ingestion.applying import ORPHAN, Outcome, apply_reading
from catalog.ingestion.reading import (
    PLACEHOLDERS,
    Emitted,
    Problem,
    Reading,
    generated_location,
    read_tree,
)
from catalog.ingestion.search import flatten, search_text
from catalog.models import CatalogLocation
from catalog.readers import Source
from portal.settings import CatalogSettings

__all__ = [
    "ORPHAN",
    "PLACEHOLDERS",
    "Emitted",
    "Outcome",
    "Problem",
    "Reading",
    "apply_reading",
    "flatten",
    "generated_location",
    "read_tree",
    "refresh_location",
    "search_text",
]


def refresh_location(
    session: Session, location: CatalogLocation, settings: CatalogSettings
) -> Outcome:
    """Read ``location``'s tree and apply it; the caller's transaction holds all of it."""
    reading = read_tree(Source(location.type, location.target), settings)
    return apply_reading(session, location, reading)

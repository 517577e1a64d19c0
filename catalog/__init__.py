"""The software catalog: Backstage-compatible entities, locations, relations, API and pages."""

# Its session events raise the catalog's generation whenever any code writes the catalog.
from catalog import generation as generation

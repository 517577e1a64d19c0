"""The software catalog: Backstage-compatible entities, locations, relations, API and pages."""

"""The catalog's migrations keep what the catalog holds."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.engine import Engine

from portal import schema

from conftest import BOTH_BACKENDS

ENTITY = (
    "INSERT INTO catalog_entity (uid, ref, kind_key, namespace_key, name_key, body, etag, "
    "source, source_hash, is_orphan, errors, search_text, created_at, refreshed_at) VALUES "
    "(:uid, :ref, 'component', 'default', :name, '{}', 'e', 's', 'h', false, '[]', '', "
    "CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
)
SEARCH = (
    "INSERT INTO catalog_search (entity_uid, key, value, original_value) "
    "VALUES (:uid, :key, :value, :value)"
)
RELATION = (
    "INSERT INTO catalog_relation (origin_uid, source_key, type, target_key, target_ref) "
    "VALUES (:uid, :source, 'ownedBy', :target, :target)"
)


@BOTH_BACKENDS
@pytest.mark.parametrize("way", ["up", "down and up again"])
def test_search_rows_and_relations_are_kept_numbered_within_their_entity(
    backend: str, way: str, engine: Engine
) -> None:
    schema.downgrade(engine, "0004")
    with engine.begin() as connection:
        for uid, name in (("u1", "a"), ("u2", "b")):
            connection.execute(
                text(ENTITY), {"uid": uid, "ref": f"component:default/{name}", "name": name}
            )
        for uid, key in (("u2", "kind"), ("u1", "kind"), ("u2", "spec.type"), ("u1", "spec.owner")):
            connection.execute(text(SEARCH), {"uid": uid, "key": key, "value": f"{uid}-{key}"})
        connection.execute(
            text(RELATION),
            {"uid": "u1", "source": "component:default/a", "target": "group:default/t"},
        )
    schema.upgrade(engine)
    if way == "down and up again":
        schema.downgrade(engine, "0004")
        schema.upgrade(engine)

    with engine.connect() as connection:
        search = connection.execute(
            text("SELECT entity_uid, ordinal, key FROM catalog_search ORDER BY entity_uid, ordinal")
        ).all()
        relations = connection.execute(
            text("SELECT origin_uid, ordinal, target_key FROM catalog_relation")
        ).all()
    assert [tuple(row) for row in search] == [
        ("u1", 0, "kind"),
        ("u1", 1, "spec.owner"),
        ("u2", 0, "kind"),
        ("u2", 1, "spec.type"),
    ]
    assert [tuple(row) for row in relations] == [("u1", 0, "group:default/t")]

"""The catalog made fast: its generation, indexes that read a page in order, and search
rows and relations keyed by their entity and place, with no foreign key, sequence or
index a large ingestion would maintain for nothing (catalog.models.delete_entities removes
them with their entity). Their rows are copied over, numbered within each entity.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-23
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SEARCH_FIELDS = "key, value, original_value"
RELATION_FIELDS = "source_key, type, target_key, target_ref"


def upgrade() -> None:
    state = op.create_table(
        "catalog_state",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("generation", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.bulk_insert(state, [{"id": 1, "generation": 0}])
    op.drop_index("ix_catalog_entity_kind_name", table_name="catalog_entity")
    op.create_index(
        "ix_catalog_entity_kind_order",
        "catalog_entity",
        ["kind_key", "namespace_key", "name_key", "uid"],
    )
    op.create_index("ix_catalog_entity_name_order", "catalog_entity", ["name_key", "uid"])

    op.create_table(
        "catalog_search_new",
        sa.Column("entity_uid", sa.String(length=36), nullable=False),
        sa.Column("ordinal", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("value", sa.String(length=200), nullable=True),
        sa.Column("original_value", sa.String(length=200), nullable=True),
        sa.PrimaryKeyConstraint("entity_uid", "ordinal", name="pk_catalog_search"),
    )
    _copy_numbered("catalog_search", "entity_uid", SEARCH_FIELDS)
    op.create_table(
        "catalog_relation_new",
        sa.Column("origin_uid", sa.String(length=36), nullable=False),
        sa.Column("ordinal", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("source_key", sa.String(length=400), nullable=False),
        sa.Column("type", sa.String(length=50), nullable=False),
        sa.Column("target_key", sa.String(length=400), nullable=False),
        sa.Column("target_ref", sa.String(length=400), nullable=False),
        sa.PrimaryKeyConstraint("origin_uid", "ordinal", name="pk_catalog_relation"),
    )
    _copy_numbered("catalog_relation", "origin_uid", RELATION_FIELDS)
    op.create_index("ix_catalog_search_key_value", "catalog_search", ["key", "value", "entity_uid"])
    op.create_index("ix_catalog_relation_source", "catalog_relation", ["source_key", "type"])


def _copy_numbered(table: str, owner: str, fields: str) -> None:
    """Move ``table``'s rows into ``<table>_new``, numbered within each ``owner``, and put
    the new table in the old one's place (its indexes go with the old table)."""
    op.execute(
        f"INSERT INTO {table}_new ({owner}, ordinal, {fields}) "  # noqa: S608 (our own names)
        f"SELECT {owner}, ROW_NUMBER() OVER (PARTITION BY {owner} ORDER BY id) - 1, {fields} "
        f"FROM {table}"
    )
    op.drop_table(table)
    op.rename_table(f"{table}_new", table)


def downgrade() -> None:
    op.drop_index("ix_catalog_relation_source", table_name="catalog_relation")
    op.drop_index("ix_catalog_search_key_value", table_name="catalog_search")
    op.create_table(
        "catalog_search_old",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("entity_uid", sa.String(length=36), nullable=False),
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("value", sa.String(length=200), nullable=True),
        sa.Column("original_value", sa.String(length=200), nullable=True),
        sa.ForeignKeyConstraint(["entity_uid"], ["catalog_entity.uid"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.execute(
        f"INSERT INTO catalog_search_old (entity_uid, {SEARCH_FIELDS}) "  # noqa: S608
        f"SELECT entity_uid, {SEARCH_FIELDS} FROM catalog_search ORDER BY entity_uid, ordinal"
    )
    op.drop_table("catalog_search")
    op.rename_table("catalog_search_old", "catalog_search")
    op.create_table(
        "catalog_relation_old",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("origin_uid", sa.String(length=36), nullable=False),
        sa.Column("source_key", sa.String(length=400), nullable=False),
        sa.Column("type", sa.String(length=50), nullable=False),
        sa.Column("target_key", sa.String(length=400), nullable=False),
        sa.Column("target_ref", sa.String(length=400), nullable=False),
        sa.ForeignKeyConstraint(["origin_uid"], ["catalog_entity.uid"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.execute(
        f"INSERT INTO catalog_relation_old (origin_uid, {RELATION_FIELDS}) "  # noqa: S608
        f"SELECT origin_uid, {RELATION_FIELDS} FROM catalog_relation "
        "ORDER BY origin_uid, ordinal"
    )
    op.drop_table("catalog_relation")
    op.rename_table("catalog_relation_old", "catalog_relation")
    op.create_index("ix_catalog_search_key_value", "catalog_search", ["key", "value", "entity_uid"])
    op.create_index("ix_catalog_search_entity", "catalog_search", ["entity_uid"])
    op.create_index("ix_catalog_relation_source", "catalog_relation", ["source_key", "type"])
    op.create_index("ix_catalog_relation_target", "catalog_relation", ["target_key", "type"])
    op.create_index("ix_catalog_relation_origin", "catalog_relation", ["origin_uid"])
    op.drop_index("ix_catalog_entity_name_order", table_name="catalog_entity")
    op.drop_index("ix_catalog_entity_kind_order", table_name="catalog_entity")
    op.create_index(
        "ix_catalog_entity_kind_name", "catalog_entity", ["kind_key", "name_key", "uid"]
    )
    op.drop_table("catalog_state")

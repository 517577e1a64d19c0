"""The catalog: registered locations, entities, their search rows and relations.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "catalog_location",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("type", sa.String(length=20), nullable=False),
        sa.Column("target", sa.String(length=2000), nullable=False),
        sa.Column("created_by", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("refreshed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("errors", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("target"),
    )
    op.create_table(
        "catalog_entity",
        sa.Column("uid", sa.String(length=36), nullable=False),
        sa.Column("ref", sa.String(length=400), nullable=False),
        sa.Column("kind_key", sa.String(length=100), nullable=False),
        sa.Column("namespace_key", sa.String(length=100), nullable=False),
        sa.Column("name_key", sa.String(length=100), nullable=False),
        sa.Column("body", sa.JSON(), nullable=False),
        sa.Column("etag", sa.String(length=64), nullable=False),
        sa.Column("location_id", sa.String(length=36), nullable=True),
        sa.Column("source", sa.String(length=2000), nullable=False),
        sa.Column("source_hash", sa.String(length=64), nullable=False),
        sa.Column("is_orphan", sa.Boolean(), nullable=False),
        sa.Column("errors", sa.JSON(), nullable=False),
        sa.Column("search_text", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("refreshed_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["location_id"], ["catalog_location.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("uid"),
        sa.UniqueConstraint("ref"),
    )
    op.create_index(
        "ix_catalog_entity_kind_name", "catalog_entity", ["kind_key", "name_key", "uid"]
    )
    op.create_index("ix_catalog_entity_location", "catalog_entity", ["location_id"])
    op.create_table(
        "catalog_search",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("entity_uid", sa.String(length=36), nullable=False),
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("value", sa.String(length=200), nullable=True),
        sa.Column("original_value", sa.String(length=200), nullable=True),
        sa.ForeignKeyConstraint(["entity_uid"], ["catalog_entity.uid"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_catalog_search_key_value", "catalog_search", ["key", "value", "entity_uid"])
    op.create_index("ix_catalog_search_entity", "catalog_search", ["entity_uid"])
    op.create_table(
        "catalog_relation",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("origin_uid", sa.String(length=36), nullable=False),
        sa.Column("source_key", sa.String(length=400), nullable=False),
        sa.Column("type", sa.String(length=50), nullable=False),
        sa.Column("target_key", sa.String(length=400), nullable=False),
        sa.Column("target_ref", sa.String(length=400), nullable=False),
        sa.ForeignKeyConstraint(["origin_uid"], ["catalog_entity.uid"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_catalog_relation_source", "catalog_relation", ["source_key", "type"])
    op.create_index("ix_catalog_relation_target", "catalog_relation", ["target_key", "type"])
    op.create_index("ix_catalog_relation_origin", "catalog_relation", ["origin_uid"])


def downgrade() -> None:
    op.drop_table("catalog_relation")
    op.drop_table("catalog_search")
    op.drop_table("catalog_entity")
    op.drop_table("catalog_location")

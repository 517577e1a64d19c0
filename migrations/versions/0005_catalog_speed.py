"""The catalog's generation, indexes that read a page in order, and no foreign keys from
search rows and relations to their entity (checked per row, they tripled the time a large
ingestion takes; catalog.models.delete_entities removes the rows with their entity).

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


FOREIGN_KEYS = (("catalog_search", "entity_uid"), ("catalog_relation", "origin_uid"))
# 0004 left these constraints unnamed: PostgreSQL named them <table>_<column>_fkey, and
# SQLite's batch mode finds them by this convention.
NAMING = {"fk": "%(table_name)s_%(column_0_name)s_fkey"}


def _name(table: str, column: str) -> str:
    return f"{table}_{column}_fkey"


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
    for table, column in FOREIGN_KEYS:
        with op.batch_alter_table(table, naming_convention=NAMING) as batch:
            batch.drop_constraint(_name(table, column), type_="foreignkey")


def downgrade() -> None:
    for table, column in FOREIGN_KEYS:
        with op.batch_alter_table(table, naming_convention=NAMING) as batch:
            batch.create_foreign_key(
                _name(table, column), "catalog_entity", [column], ["uid"], ondelete="CASCADE"
            )
    op.drop_index("ix_catalog_entity_name_order", table_name="catalog_entity")
    op.drop_index("ix_catalog_entity_kind_order", table_name="catalog_entity")
    op.create_index(
        "ix_catalog_entity_kind_name", "catalog_entity", ["kind_key", "name_key", "uid"]
    )
    op.drop_table("catalog_state")

"""PII scans: one row per scan of a dataset or an uploaded sample, with its findings.

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-24
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "pii_scan",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("dataset", sa.String(length=400), nullable=True),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("uploaded", sa.Boolean(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("task_id", sa.Integer(), nullable=True),
        sa.Column("requested_by", sa.String(length=400), nullable=False),
        sa.Column("requested_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("files", sa.JSON(), nullable=False),
        sa.Column("rows_read", sa.Integer(), nullable=False),
        sa.Column("rows_scanned", sa.Integer(), nullable=False),
        sa.Column("complete", sa.Boolean(), nullable=False),
        sa.Column("recognizers", sa.JSON(), nullable=False),
        sa.Column("ner_model", sa.String(length=200), nullable=True),
        sa.Column("notes", sa.JSON(), nullable=False),
        sa.Column("columns", sa.JSON(), nullable=False),
        sa.Column("has_pii", sa.Boolean(), nullable=True),
        sa.Column("suggested_classification", sa.String(length=32), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_pii_scan_dataset", "pii_scan", ["dataset", "status", "id"])


def downgrade() -> None:
    op.drop_table("pii_scan")

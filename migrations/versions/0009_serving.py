"""Serving: deployments, their history and their figures by the minute.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-24
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "serving_deployment",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=63), nullable=False),
        sa.Column("model", sa.String(length=200), nullable=False),
        sa.Column("model_ref", sa.String(length=400), nullable=True),
        sa.Column("project", sa.String(length=400), nullable=True),
        sa.Column("owner", sa.String(length=400), nullable=False),
        sa.Column("environment", sa.String(length=63), nullable=False),
        sa.Column("runtime", sa.String(length=63), nullable=False),
        sa.Column("stable_version", sa.String(length=20), nullable=True),
        sa.Column("canary_version", sa.String(length=20), nullable=True),
        sa.Column("canary_percent", sa.Integer(), nullable=False),
        sa.Column("previous_version", sa.String(length=20), nullable=True),
        sa.Column("endpoints", sa.JSON(), nullable=False),
        sa.Column("pending", sa.JSON(), nullable=True),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("serving", sa.JSON(), nullable=False),
        sa.Column("monitoring", sa.JSON(), nullable=False),
        sa.Column("reference", sa.JSON(), nullable=False),
        sa.Column("task_id", sa.Integer(), nullable=True),
        sa.Column("created_by", sa.String(length=400), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["task_id"], ["task.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("name"),
    )
    op.create_index("ix_serving_deployment_model", "serving_deployment", ["model"])
    op.create_index("ix_serving_deployment_owner", "serving_deployment", ["owner"])
    op.create_table(
        "serving_event",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("deployment_id", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("actor", sa.String(length=400), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("stable_version", sa.String(length=20), nullable=True),
        sa.Column("canary_version", sa.String(length=20), nullable=True),
        sa.Column("canary_percent", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["deployment_id"], ["serving_deployment.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_serving_event_deployment", "serving_event", ["deployment_id", "id"])
    op.create_table(
        "serving_metric",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("deployment", sa.String(length=63), nullable=False),
        sa.Column("version", sa.String(length=20), nullable=False),
        sa.Column("minute", sa.DateTime(timezone=True), nullable=False),
        sa.Column("requests", sa.Integer(), nullable=False),
        sa.Column("errors", sa.Integer(), nullable=False),
        sa.Column("p50_ms", sa.Float(), nullable=True),
        sa.Column("p99_ms", sa.Float(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_serving_metric_deployment", "serving_metric", ["deployment", "minute"])


def downgrade() -> None:
    op.drop_table("serving_metric")
    op.drop_table("serving_event")
    op.drop_table("serving_deployment")

"""Cost chargeback: usage per day, what each source last reported, budgets, their alerts
and overrides.

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-24
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "cost_usage",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("source", sa.String(length=63), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("team", sa.String(length=400), nullable=False),
        sa.Column("project", sa.String(length=400), nullable=False),
        sa.Column("model", sa.String(length=200), nullable=False),
        sa.Column("metric", sa.String(length=63), nullable=False),
        sa.Column("quantity", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_cost_usage_day_team", "cost_usage", ["day", "team"])
    op.create_index("ix_cost_usage_source_day", "cost_usage", ["source", "day"])
    op.create_table(
        "cost_source",
        sa.Column("name", sa.String(length=63), nullable=False),
        sa.Column("collected_from", sa.Date(), nullable=True),
        sa.Column("collected_through", sa.Date(), nullable=True),
        sa.Column("collected_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("rows", sa.Integer(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("name"),
    )
    op.create_table(
        "cost_budget",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("team", sa.String(length=400), nullable=False),
        sa.Column("month", sa.String(length=7), nullable=False),
        sa.Column("amount", sa.Float(), nullable=False),
        sa.Column("updated_by", sa.String(length=400), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("team", "month", name="uq_cost_budget_team_month"),
    )
    op.create_table(
        "cost_alert",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("team", sa.String(length=400), nullable=False),
        sa.Column("month", sa.String(length=7), nullable=False),
        sa.Column("threshold", sa.Integer(), nullable=False),
        sa.Column("spent", sa.Float(), nullable=False),
        sa.Column("amount", sa.Float(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("team", "month", "threshold", name="uq_cost_alert_team_month"),
    )
    op.create_table(
        "cost_override",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("team", sa.String(length=400), nullable=False),
        sa.Column("month", sa.String(length=7), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("by", sa.String(length=400), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("team", "month", name="uq_cost_override_team_month"),
    )


def downgrade() -> None:
    op.drop_table("cost_override")
    op.drop_table("cost_alert")
    op.drop_table("cost_budget")
    op.drop_table("cost_source")
    op.drop_index("ix_cost_usage_source_day", table_name="cost_usage")
    op.drop_index("ix_cost_usage_day_team", table_name="cost_usage")
    op.drop_table("cost_usage")

"""Training jobs, beside the tasks that run them.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-23
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "training_job",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("task_id", sa.Integer(), nullable=True),
        sa.Column("project", sa.String(length=400), nullable=False),
        sa.Column("model", sa.String(length=200), nullable=True),
        sa.Column("owner", sa.String(length=400), nullable=False),
        sa.Column("backend", sa.String(length=100), nullable=False),
        sa.Column("command", sa.JSON(), nullable=False),
        sa.Column("parameters", sa.JSON(), nullable=False),
        sa.Column("resources", sa.JSON(), nullable=False),
        sa.Column("timeout_minutes", sa.Integer(), nullable=False),
        sa.Column("source", sa.String(length=2000), nullable=False),
        sa.Column("revision", sa.String(length=64), nullable=True),
        sa.Column("experiment", sa.String(length=200), nullable=False),
        sa.Column("trained_on", sa.JSON(), nullable=False),
        sa.Column("mlflow_experiment_id", sa.String(length=64), nullable=True),
        sa.Column("mlflow_run_id", sa.String(length=64), nullable=True),
        sa.Column("submitted_by", sa.String(length=400), nullable=False),
        sa.Column("submitted_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("usage", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(["task_id"], ["task.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("task_id"),
    )
    op.create_index("ix_training_job_project", "training_job", ["project"])
    op.create_index("ix_training_job_owner", "training_job", ["owner"])


def downgrade() -> None:
    op.drop_table("training_job")

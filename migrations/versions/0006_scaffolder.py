"""The scaffolder: template runs beside their tasks, and task log lines about a step.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-23
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("task_log") as batch:
        batch.add_column(sa.Column("step", sa.String(length=100), nullable=True))
        batch.add_column(sa.Column("step_status", sa.String(length=16), nullable=True))
    op.create_table(
        "scaffolder_run",
        sa.Column("task_id", sa.Integer(), nullable=False),
        sa.Column("template_ref", sa.String(length=400), nullable=False),
        sa.Column("spec", sa.JSON(), nullable=False),
        sa.Column("acting_as", sa.JSON(), nullable=False),
        sa.Column("files_base", sa.String(length=2000), nullable=True),
        sa.Column("sealed_secrets", sa.Text(), nullable=True),
        sa.Column("steps", sa.JSON(), nullable=False),
        sa.Column("output", sa.JSON(), nullable=True),
        sa.ForeignKeyConstraint(["task_id"], ["task.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("task_id"),
    )
    op.create_index("ix_scaffolder_run_template_ref", "scaffolder_run", ["template_ref"])


def downgrade() -> None:
    op.drop_table("scaffolder_run")
    with op.batch_alter_table("task_log") as batch:
        batch.drop_column("step_status")
        batch.drop_column("step")

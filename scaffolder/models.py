"""The scaffolder's table: one row per run of a template, beside the task that runs it."""

from __future__ import annotations

from typing import Any

from sqlalchemy import JSON, Column, ForeignKey, Integer, Text
from sqlmodel import Field, SQLModel


class ScaffolderRun(SQLModel, table=True):
    """A template run: what it was asked (the template as it was, the values, who asked),
    and how far it got, step by step, so a retry picks up at the step that failed."""

    __tablename__ = "scaffolder_run"

    task_id: int = Field(
        sa_column=Column(
            Integer, ForeignKey("task.id", ondelete="CASCADE"), primary_key=True, nullable=False
        )
    )
    template_ref: str = Field(max_length=400, index=True)
    # Backstage's task spec: apiVersion, parameters (the values, secrets left out), steps,
    # output, templateInfo and user.
    spec: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    # Who asked, with the roles and groups they had: each step acts as them.
    acting_as: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    # The template's own files: the folder next to its template.yaml.
    files_base: str | None = Field(default=None, max_length=2000)
    # Secret values, encrypted with the portal's key; erased when the run succeeds.
    sealed_secrets: str | None = Field(default=None, sa_column=Column(Text))
    # Per step id: {"status": ..., "output": {...}}.
    steps: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    output: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON))

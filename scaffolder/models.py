"""The scaffolder's table (one row per run of a template, beside the task that runs it)
and the shapes its API reads."""

from __future__ import annotations

from typing import Any

import pydantic
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


class ScaffoldIn(pydantic.BaseModel):
    """``POST /v2/tasks``: the template to run and the values of its form."""

    model_config = pydantic.ConfigDict(populate_by_name=True, extra="forbid")

    template_ref: str = pydantic.Field(
        alias="templateRef", description="template:<namespace>/<name>"
    )
    values: dict[str, Any] = pydantic.Field(description="The values of the template's form")
    secrets: dict[str, str] | None = pydantic.Field(
        None, description="Values never stored in clear nor shown (`${{ secrets.x }}`)"
    )


class RetryIn(pydantic.BaseModel):
    secrets: dict[str, str] | None = None


class DryRunIn(pydantic.BaseModel):
    """``POST /v2/dry-run``: a template with its files inline (Backstage's body), or a
    template in the catalog with its own files (``templateRef``)."""

    model_config = pydantic.ConfigDict(populate_by_name=True)

    template: dict[str, Any] | None = None
    template_ref: str | None = pydantic.Field(None, alias="templateRef")
    values: dict[str, Any] = pydantic.Field(default_factory=dict)
    secrets: dict[str, str] | None = None
    directory_contents: list[dict[str, Any]] = pydantic.Field(
        default_factory=list, alias="directoryContents"
    )

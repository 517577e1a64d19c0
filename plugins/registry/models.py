"""The registry's table (approvals; the versions themselves live in MLflow) and API shapes."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict
from pydantic import Field as PydanticField
from sqlalchemy import Column, DateTime, Index, String, Text
from sqlmodel import Field, SQLModel

from portal.db import utcnow


class ModelApproval(SQLModel, table=True):
    """A team lead's decision on one version of a registered model."""

    __tablename__ = "model_approval"
    __table_args__ = (Index("ix_model_approval_version", "model", "version"),)

    id: int | None = Field(default=None, primary_key=True)
    model: str = Field(sa_column=Column(String(200), nullable=False))
    version: str = Field(max_length=20)
    decision: str = Field(max_length=16)  # approved | rejected
    comment: str = Field(default="", sa_column=Column(Text, nullable=False))
    requested_by: str = Field(max_length=400)  # who registered the version
    decided_by: str = Field(max_length=400)
    decided_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(DateTime(timezone=True), nullable=False)
    )


class RegisterIn(BaseModel):
    """Register a run's model as a new version."""

    model_config = ConfigDict(extra="forbid")

    run_id: str = PydanticField(min_length=1, max_length=64, description="The MLflow run")
    artifact_path: str = PydanticField(
        "model", min_length=1, max_length=200, description="Where the run logged its model"
    )
    description: str = PydanticField("", max_length=5000, description="What changed")


class ApprovalIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    decision: Literal["approved", "rejected"] = "approved"
    comment: str = PydanticField("", max_length=5000)


class AliasIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: str = PydanticField(pattern=r"^[0-9]{1,9}$", description="The version to point at")


class ApprovalOut(BaseModel):
    decision: str
    comment: str
    requested_by: str
    decided_by: str
    decided_at: datetime


class VersionOut(BaseModel):
    """A registered version with its lineage: the run, its metrics and parameters, the
    commit and data it was trained from."""

    model: str
    version: str
    status: str
    description: str
    source: str
    aliases: list[str]
    created_at: datetime | None
    registered_by: str | None
    run_id: str | None
    run_url: str | None
    version_url: str | None
    metrics: dict[str, float]
    params: dict[str, str]
    git_commit: str | None
    project: str | None
    trained_on: list[str]
    training_job: str | None
    approved: bool
    approvals: list[ApprovalOut]


class ModelOut(BaseModel):
    name: str
    description: str
    entity: str | None
    owner: str | None
    aliases: dict[str, str]
    latest_version: str | None
    versions: int
    tags: dict[str, Any]

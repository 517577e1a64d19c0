"""The training tables: one row per job, beside the task that runs it."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict
from pydantic import Field as PydanticField
from sqlalchemy import JSON, Column, DateTime, ForeignKey, Integer, String
from sqlmodel import Field, SQLModel

from portal.db import utcnow


class TrainingJob(SQLModel, table=True):
    """A training run of a project: what was asked, where its code came from, and where its
    MLflow run is. Its status and log are its task's."""

    __tablename__ = "training_job"

    id: int | None = Field(default=None, primary_key=True)
    task_id: int = Field(
        sa_column=Column(Integer, ForeignKey("task.id", ondelete="CASCADE"), unique=True)
    )
    project: str = Field(sa_column=Column(String(400), nullable=False, index=True))
    model: str | None = Field(default=None, max_length=200)
    owner: str = Field(sa_column=Column(String(400), nullable=False, index=True))
    backend: str = Field(max_length=100)
    command: list[str] = Field(sa_column=Column(JSON, nullable=False))
    parameters: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    resources: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    timeout_minutes: int
    source: str = Field(sa_column=Column(String(2000), nullable=False))
    revision: str | None = Field(default=None, max_length=64)
    experiment: str = Field(max_length=200)
    # The Datasets the model is trained on (the Model entity's spec.trainedOn), for lineage.
    trained_on: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    mlflow_experiment_id: str | None = Field(default=None, max_length=64)
    mlflow_run_id: str | None = Field(default=None, max_length=64)
    submitted_by: str = Field(max_length=400)
    submitted_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(DateTime(timezone=True), nullable=False)
    )
    # What the job used, for chargeback: cpu_seconds, gpu_seconds, max_memory_bytes, seconds.
    usage: dict[str, float] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))


class JobIn(BaseModel):
    """A request to train a project."""

    model_config = ConfigDict(extra="forbid")

    project: str = PydanticField(
        description="Entity ref of the project's Component (or of its Model)",
        examples=["component:default/churn"],
    )
    parameters: dict[str, str | int | float | bool] = PydanticField(
        default_factory=dict,
        description="Parameters overriding the project's defaults, passed as --name value",
    )
    backend: str | None = PydanticField(
        None, description="Where to run: `local`, `kubernetes`; default from the project"
    )


class JobOut(BaseModel):
    """A training job as the API shows it."""

    id: int
    task_id: int
    status: str
    project: str
    model: str | None
    owner: str
    backend: str
    command: list[str]
    parameters: dict[str, Any]
    resources: dict[str, Any]
    timeout_minutes: int
    source: str
    revision: str | None
    experiment: str
    trained_on: list[str]
    mlflow_experiment_id: str | None
    mlflow_run_id: str | None
    mlflow_run_url: str | None
    submitted_by: str
    submitted_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    error: str | None
    usage: dict[str, float]

"""The serving tables (deployments, their history, their metrics by the minute) and the API's
shapes."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict
from pydantic import Field as PydanticField
from sqlalchemy import JSON, Column, DateTime, Float, ForeignKey, Index, Integer, String, Text
from sqlmodel import Field, SQLModel

from portal.db import utcnow

NAME_PATTERN = r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$"
VERSION_PATTERN = r"^[0-9]{1,9}$"


class Deployment(SQLModel, table=True):
    """A model served in one environment: what answers now (``stable``, and the ``canary``
    with its share of traffic) and what is being brought up (``pending``).

    Only a finished deployment task changes what answers, so a deploy that fails leaves the
    previous versions serving. ``previous_version`` is the stable version before the last
    promotion, kept running so that a rollback is a switch, not a start.
    """

    __tablename__ = "serving_deployment"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(sa_column=Column(String(63), nullable=False, unique=True))
    model: str = Field(sa_column=Column(String(200), nullable=False, index=True))
    model_ref: str | None = Field(default=None, max_length=400)  # its Model entity
    project: str | None = Field(default=None, max_length=400)  # its Component entity
    owner: str = Field(sa_column=Column(String(400), nullable=False, index=True))
    environment: str = Field(max_length=63)
    runtime: str = Field(max_length=63)
    stable_version: str | None = Field(default=None, max_length=20)
    canary_version: str | None = Field(default=None, max_length=20)
    canary_percent: int = 0
    previous_version: str | None = Field(default=None, max_length=20)
    # {version: url} of the running versions, or {"*": url} for a runtime that splits itself.
    endpoints: dict[str, str] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    # What a running task is bringing up: {"stable": "4"} or {"canary": "4", "percent": 10}.
    pending: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    status: str = Field(default="deploying", max_length=20)  # deploying|serving|failed|removing
    message: str = Field(default="", sa_column=Column(Text, nullable=False))
    # From the project's paved-project.yaml: serving (replicas, resources, canary thresholds)
    # and monitoring (alert thresholds, drift).
    serving: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    monitoring: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    # Per feature of the training data: {"edges": [...], "proportions": [...]}, for drift.
    reference: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    task_id: int | None = Field(
        default=None, sa_column=Column(Integer, ForeignKey("task.id", ondelete="SET NULL"))
    )
    created_by: str = Field(max_length=400)
    created_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(DateTime(timezone=True), nullable=False)
    )
    updated_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(DateTime(timezone=True), nullable=False)
    )


class DeploymentEvent(SQLModel, table=True):
    """One change of what a deployment serves, with who (or what) made it and why."""

    __tablename__ = "serving_event"
    __table_args__ = (Index("ix_serving_event_deployment", "deployment_id", "id"),)

    id: int | None = Field(default=None, primary_key=True)
    deployment_id: int = Field(
        sa_column=Column(
            Integer, ForeignKey("serving_deployment.id", ondelete="CASCADE"), nullable=False
        )
    )
    at: datetime = Field(
        default_factory=utcnow, sa_column=Column(DateTime(timezone=True), nullable=False)
    )
    # deploy | canary | percent | promote | rollback | failed | removed | alert
    kind: str = Field(max_length=20)
    actor: str = Field(max_length=400)
    message: str = Field(sa_column=Column(Text, nullable=False))
    stable_version: str | None = Field(default=None, max_length=20)
    canary_version: str | None = Field(default=None, max_length=20)
    canary_percent: int = 0


class MetricMinute(SQLModel, table=True):
    """What one version answered in one minute, written by the router that forwarded it
    (several portal processes each write their own row)."""

    __tablename__ = "serving_metric"
    __table_args__ = (Index("ix_serving_metric_deployment", "deployment", "minute"),)

    id: int | None = Field(default=None, primary_key=True)
    deployment: str = Field(sa_column=Column(String(63), nullable=False))
    version: str = Field(max_length=20)
    minute: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    requests: int
    errors: int
    p50_ms: float | None = Field(default=None, sa_column=Column(Float, nullable=True))
    p99_ms: float | None = Field(default=None, sa_column=Column(Float, nullable=True))


class DeployIn(BaseModel):
    """Deploy a registered model version to an environment."""

    model_config = ConfigDict(extra="forbid")

    model: str = PydanticField(
        min_length=1, max_length=200, description="Registered model name", examples=["churn"]
    )
    version: str = PydanticField(pattern=VERSION_PATTERN, description="Its version", examples=["3"])
    environment: str = PydanticField(
        min_length=1, max_length=63, description="One of `serving.environments`"
    )
    canary_percent: int | None = PydanticField(
        None,
        ge=1,
        le=100,
        description="Send this share of traffic to the version as a canary beside the stable "
        "one; without it the version replaces the stable one once it answers",
    )
    name: str | None = PydanticField(
        None, pattern=NAME_PATTERN, description="Deployment name; default `<model>-<environment>`"
    )
    runtime: str | None = PydanticField(
        None, description="`local`, `kubernetes`...; default from the project, then settings"
    )


class DeploymentPatch(BaseModel):
    """Change a canary's share of traffic, or promote it to stable."""

    model_config = ConfigDict(extra="forbid")

    canary_percent: int | None = PydanticField(None, ge=0, le=100)
    promote: bool = PydanticField(False, description="Make the canary the stable version")


class EventOut(BaseModel):
    at: datetime
    kind: str
    actor: str
    message: str
    stable_version: str | None
    canary_version: str | None
    canary_percent: int


class VersionMetricsOut(BaseModel):
    """A version's requests in the router's window (this portal process's)."""

    requests: int
    errors: int
    error_rate: float
    p50_ms: float | None
    p99_ms: float | None
    throughput_rps: float


class DeploymentOut(BaseModel):
    """A deployment as the API shows it."""

    name: str
    model: str
    model_ref: str | None
    project: str | None
    owner: str
    environment: str
    runtime: str
    status: str
    message: str
    stable_version: str | None
    canary_version: str | None
    canary_percent: int
    previous_version: str | None
    pending: dict[str, Any] | None
    endpoints: dict[str, str]
    url: str
    task_id: int | None
    monitoring: dict[str, Any]
    thresholds: dict[str, float | None]
    created_by: str
    created_at: datetime
    updated_at: datetime
    metrics: dict[str, VersionMetricsOut] = PydanticField(default_factory=dict)
    events: list[EventOut] = PydanticField(default_factory=list)
    # Drift past its threshold, and the stable version's error rate or p99 past monitoring's
    # (shown for one deployment, not in lists).
    alerts: list[str] = PydanticField(default_factory=list)


class MetricPoint(BaseModel):
    """One minute of one version: the charts' data."""

    minute: datetime
    version: str
    requests: int
    errors: int
    error_rate: float
    p50_ms: float | None
    p99_ms: float | None


class DriftOut(BaseModel):
    """A feature's population stability index against the training data."""

    feature: str
    psi: float | None
    observed: int
    threshold: float
    alert: bool

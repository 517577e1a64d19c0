"""The core's tables: tasks with their logs, and portal metadata."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any

from pydantic import BeforeValidator
from sqlalchemy import JSON, Column, DateTime, ForeignKey, Index, Integer, Text
from sqlmodel import Field, SQLModel

from portal.db import as_utc, utcnow

metadata = SQLModel.metadata


class TaskStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def is_finished(self) -> bool:
        return self in {TaskStatus.SUCCEEDED, TaskStatus.FAILED, TaskStatus.CANCELLED}


def _moment() -> Any:
    """A nullable moment in UTC."""
    return Field(default=None, sa_column=Column(DateTime(timezone=True)))


class Task(SQLModel, table=True):
    """Long work, persisted: queued, claimed by one worker, heartbeating while it runs."""

    __tablename__ = "task"
    __table_args__ = (Index("ix_task_claim", "status", "id"),)

    id: int | None = Field(default=None, primary_key=True)
    kind: str = Field(max_length=100, index=True)
    title: str = Field(max_length=200)
    params: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    status: str = Field(default=TaskStatus.QUEUED, max_length=16)
    created_by: str | None = Field(default=None, max_length=200)
    created_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(DateTime(timezone=True), nullable=False)
    )
    started_at: datetime | None = _moment()
    finished_at: datetime | None = _moment()
    heartbeat_at: datetime | None = _moment()
    worker_id: str | None = Field(default=None, max_length=100)
    attempts: int = Field(default=0)
    cancel_requested: bool = Field(default=False)
    progress_done: int | None = Field(default=None)
    progress_total: int | None = Field(default=None)
    result: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON))
    error: str | None = Field(default=None, sa_column=Column(Text))


class TaskLog(SQLModel, table=True):
    """One line of a task's log, kept with the task so a browser can follow it live."""

    __tablename__ = "task_log"

    id: int | None = Field(default=None, primary_key=True)
    task_id: int = Field(
        sa_column=Column(
            Integer, ForeignKey("task.id", ondelete="CASCADE"), index=True, nullable=False
        )
    )
    at: datetime = Field(
        default_factory=utcnow, sa_column=Column(DateTime(timezone=True), nullable=False)
    )
    level: str = Field(default="info", max_length=10)
    message: str = Field(sa_column=Column(Text, nullable=False))
    # For work done in steps (a template's), which step the line is about and, when the
    # line says the step started or ended, its status then.
    step: str | None = Field(default=None, max_length=100)
    step_status: str | None = Field(default=None, max_length=16)


class PortalMeta(SQLModel, table=True):
    """Facts about this installation, e.g. when demo data was loaded."""

    __tablename__ = "portal_meta"

    key: str = Field(primary_key=True, max_length=100)
    value: str = Field(sa_column=Column(Text, nullable=False))


def _aware(value: Any) -> Any:
    return as_utc(value) if isinstance(value, datetime) else value


# SQLite returns naive datetimes; the API always says the moment is UTC.
UtcMoment = Annotated[datetime, BeforeValidator(_aware)]


class TaskOut(SQLModel):
    """A task as the API shows it."""

    id: int
    kind: str
    title: str
    status: TaskStatus
    params: dict[str, Any]
    created_by: str | None
    created_at: UtcMoment
    started_at: UtcMoment | None
    finished_at: UtcMoment | None
    heartbeat_at: UtcMoment | None
    worker_id: str | None
    attempts: int
    cancel_requested: bool
    progress_done: int | None
    progress_total: int | None
    result: dict[str, Any] | None
    error: str | None


class TaskLogOut(SQLModel):
    id: int
    at: UtcMoment
    level: str
    message: str
    step: str | None = None
    step_status: str | None = None


class PluginOut(SQLModel):
    """A plugin as ``/api/plugins`` and ``paved plugins list`` show it."""

    name: str
    target: str
    distribution: str | None
    version: str | None
    status: str
    hooks: list[str]
    problems: list[str]


GENESIS_HASH = "0" * 64


class AuditEvent(SQLModel, table=True):
    """One decision and its outcome; each event carries the hash of the one before it.

    Rows are never updated or deleted: triggers in the database refuse it, and
    ``paved audit verify`` finds any change made behind the database's back.
    """

    __tablename__ = "audit_event"
    __table_args__ = (
        Index("ix_audit_event_actor", "actor", "id"),
        Index("ix_audit_event_action", "action", "id"),
    )

    # Assigned from ``AuditHead.length``: the chain's positions are 1, 2, 3, ... exactly.
    id: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False, index=True))
    actor: str = Field(max_length=200)
    action: str = Field(max_length=100)
    resource: str | None = Field(default=None, max_length=300, index=True)
    allowed: bool
    reasons: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    request_id: str | None = Field(default=None, max_length=128)
    outcome: str = Field(max_length=20, index=True)
    detail: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    prev_hash: str = Field(max_length=64)
    hash: str = Field(max_length=64, unique=True)


class AuditHead(SQLModel, table=True):
    """The chain's one-row head: how long it is and its last hash.

    Appending updates this row first, which serialises appenders on every database (a row
    lock on PostgreSQL, the write lock on SQLite) so the chain never forks.
    """

    __tablename__ = "audit_head"

    id: int = Field(default=1, primary_key=True)
    length: int = Field(default=0)
    last_hash: str = Field(default=GENESIS_HASH, max_length=64)


class AuditEventOut(SQLModel):
    id: int
    at: UtcMoment
    actor: str
    action: str
    resource: str | None
    allowed: bool
    reasons: list[str]
    request_id: str | None
    outcome: str
    detail: dict[str, Any]
    prev_hash: str
    hash: str


class ApiToken(SQLModel, table=True):
    """An API token for CI and scripts; only the SHA-256 of its secret is stored."""

    __tablename__ = "api_token"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=100)
    user_ref: str = Field(max_length=200, index=True)
    roles: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    groups: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    secret_hash: str = Field(max_length=64, unique=True)
    hint: str = Field(max_length=12)  # the first characters, to recognise a token in lists
    created_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(DateTime(timezone=True), nullable=False)
    )
    created_by: str = Field(max_length=200)
    expires_at: datetime | None = _moment()
    revoked_at: datetime | None = _moment()
    last_used_at: datetime | None = _moment()


class ApiTokenOut(SQLModel):
    id: int
    name: str
    user_ref: str
    roles: list[str]
    groups: list[str]
    hint: str
    created_at: UtcMoment
    created_by: str
    expires_at: UtcMoment | None
    revoked_at: UtcMoment | None
    last_used_at: UtcMoment | None

"""The SOC 2 plugin's tables (evidence exports, quarterly access reviews) and API shapes."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict
from pydantic import Field as PydanticField
from sqlalchemy import JSON, Column, Date, DateTime, Integer, String, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from portal.db import utcnow
from portal.models import UtcMoment

ExportStatus = Literal["queued", "running", "succeeded", "failed"]


class EvidenceExport(SQLModel, table=True):
    """One evidence pack asked for: its period, its task, and once written its file's
    name, size and SHA-256 (checked again on every download)."""

    __tablename__ = "soc2_export"

    id: int | None = Field(default=None, primary_key=True)
    start: date = Field(sa_column=Column(Date, nullable=False))
    end: date = Field(sa_column=Column(Date, nullable=False))
    status: str = Field(default="queued", max_length=16)
    task_id: int | None = Field(default=None, sa_column=Column(Integer, nullable=True))
    requested_by: str = Field(max_length=400)
    requested_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(DateTime(timezone=True), nullable=False)
    )
    finished_at: datetime | None = Field(
        default=None, sa_column=Column(DateTime(timezone=True), nullable=True)
    )
    file_name: str | None = Field(default=None, max_length=200)
    bytes: int | None = Field(default=None, sa_column=Column(Integer, nullable=True))
    sha256: str | None = Field(default=None, max_length=64)
    manifest_sha256: str | None = Field(default=None, max_length=64)
    events: int | None = Field(default=None, sa_column=Column(Integer, nullable=True))
    # {control id: status} of the pack, for lists.
    controls: dict[str, str] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    error: str | None = Field(default=None, sa_column=Column(Text, nullable=True))


class AccessReview(SQLModel, table=True):
    """A team lead's attestation, for one quarter, of each member's access to the team."""

    __tablename__ = "soc2_access_review"
    __table_args__ = (UniqueConstraint("team", "quarter", name="uq_soc2_access_review"),)

    id: int | None = Field(default=None, primary_key=True)
    team: str = Field(sa_column=Column(String(400), nullable=False))
    quarter: str = Field(max_length=7)  # 2026-Q4
    reviewer: str = Field(max_length=400)
    submitted_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(DateTime(timezone=True), nullable=False)
    )
    # [{member, decision: keep|remove, note, roles, tokens}] as attested.
    members: list[dict[str, Any]] = Field(
        default_factory=list, sa_column=Column(JSON, nullable=False)
    )
    note: str = Field(default="", sa_column=Column(Text, nullable=False))


class ExportIn(BaseModel):
    """Export the evidence of a period (days in UTC, both included)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    start: date = PydanticField(alias="from", description="First day of the period")
    end: date = PydanticField(alias="to", description="Last day of the period, included")


class ExportOut(BaseModel):
    id: int
    start: date = PydanticField(serialization_alias="from")
    end: date = PydanticField(serialization_alias="to")
    status: str
    task_id: int | None
    requested_by: str
    requested_at: UtcMoment
    finished_at: UtcMoment | None
    file_name: str | None
    bytes: int | None
    sha256: str | None
    manifest_sha256: str | None
    events: int | None
    controls: dict[str, str]
    error: str | None
    download: str | None


class MemberDecision(BaseModel):
    model_config = ConfigDict(extra="forbid")

    member: str = PydanticField(
        min_length=1, max_length=400, description="The member's User entity ref"
    )
    decision: Literal["keep", "remove"] = PydanticField(
        description="keep: the access is still needed; remove: it should be taken away"
    )
    note: str = PydanticField("", max_length=1000)


class ReviewIn(BaseModel):
    """A team lead's attestation of every member's access for the current quarter."""

    model_config = ConfigDict(extra="forbid")

    members: list[MemberDecision] = PydanticField(max_length=2000)
    note: str = PydanticField("", max_length=2000)


class ReviewMemberOut(BaseModel):
    member: str
    name: str
    roles: list[str]
    last_seen: UtcMoment | None
    tokens: int
    decision: str | None = None
    note: str = ""


class ReviewOut(BaseModel):
    team: str
    quarter: str
    due: date
    status: Literal["due", "done", "overdue"]
    reviewer: str | None
    submitted_at: UtcMoment | None
    note: str
    members: list[ReviewMemberOut]


class ControlOut(BaseModel):
    id: str
    title: str
    criterion: str
    shown_by: str
    evidence: list[dict[str, Any]]

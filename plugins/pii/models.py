"""The PII plugin's table (one row per scan, its findings with it) and API shapes."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict
from pydantic import Field as PydanticField
from sqlalchemy import JSON, Boolean, Column, DateTime, Index, Integer, String, Text
from sqlmodel import Field, SQLModel

from portal.db import utcnow

ScanStatus = Literal["queued", "running", "completed", "failed"]


class PiiScan(SQLModel, table=True):
    """One scan of a dataset's files or of an uploaded sample. Findings hold masked
    examples only: the values themselves are never stored."""

    __tablename__ = "pii_scan"
    __table_args__ = (Index("ix_pii_scan_dataset", "dataset", "status", "id"),)

    id: int | None = Field(default=None, primary_key=True)
    dataset: str | None = Field(default=None, sa_column=Column(String(400), nullable=True))
    source: str = Field(sa_column=Column(Text, nullable=False))  # a location or a file's name
    uploaded: bool = Field(default=False, sa_column=Column(Boolean, nullable=False))
    status: str = Field(default="queued", max_length=16)
    task_id: int | None = Field(default=None, sa_column=Column(Integer, nullable=True))
    requested_by: str = Field(max_length=400)
    requested_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(DateTime(timezone=True), nullable=False)
    )
    finished_at: datetime | None = Field(
        default=None, sa_column=Column(DateTime(timezone=True), nullable=True)
    )
    files: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    rows_read: int = Field(default=0, sa_column=Column(Integer, nullable=False))
    rows_scanned: int = Field(default=0, sa_column=Column(Integer, nullable=False))
    complete: bool = Field(default=True, sa_column=Column(Boolean, nullable=False))
    recognizers: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    ner_model: str | None = Field(default=None, sa_column=Column(String(200), nullable=True))
    notes: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    columns: list[dict[str, Any]] = Field(
        default_factory=list, sa_column=Column(JSON, nullable=False)
    )
    has_pii: bool | None = Field(default=None, sa_column=Column(Boolean, nullable=True))
    suggested_classification: str | None = Field(default=None, max_length=32)
    error: str | None = Field(default=None, sa_column=Column(Text, nullable=True))


class ScanIn(BaseModel):
    """Scan a Dataset entity's files."""

    model_config = ConfigDict(extra="forbid")

    dataset: str = PydanticField(
        min_length=1,
        max_length=400,
        description="The Dataset's entity ref",
        examples=["dataset:default/churn-train"],
    )


class FindingOut(BaseModel):
    entity: str = PydanticField(description="Presidio's entity type, e.g. EMAIL_ADDRESS")
    count: int = PydanticField(description="Values of the sample holding it")
    mean_score: float
    max_score: float
    examples: list[str] = PydanticField(description="Masked: first and last characters only")


class ColumnOut(BaseModel):
    column: str
    values: int = PydanticField(description="Non-empty values scanned")
    findings: list[FindingOut]


class ScanOut(BaseModel):
    """A scan, and once completed its findings per column."""

    id: int
    dataset: str | None
    source: str
    uploaded: bool
    status: ScanStatus
    task_id: int | None
    requested_by: str
    requested_at: datetime
    finished_at: datetime | None
    files: list[str]
    rows_read: int
    rows_scanned: int
    complete: bool = PydanticField(description="Every row was read (none past pii.max_rows)")
    recognizers: list[str] = PydanticField(description="The recognizers that ran")
    ner_model: str | None = PydanticField(description="The spaCy model that found names")
    notes: list[str] = PydanticField(description="What was not looked for, and why")
    columns: list[ColumnOut]
    has_pii: bool | None
    suggested_classification: str | None
    error: str | None
    result: Literal["clean", "pii_found"] | None = PydanticField(
        None, description="What the production policy sees of a completed scan"
    )

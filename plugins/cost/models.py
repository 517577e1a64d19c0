"""The cost plugin's tables (usage per day, what each source last reported, budgets, their
alerts and overrides) and API shapes."""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict
from pydantic import Field as PydanticField
from sqlalchemy import Column, Date, DateTime, Float, Index, String, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from portal.db import utcnow

GroupBy = Literal["team", "project", "model"]
Granularity = Literal["day", "month"]
# A budget that applies to every month that has none of its own.
EVERY_MONTH = "*"
MONTH_PATTERN = r"^\d{4}-(0[1-9]|1[0-2])$"


class UsageRow(SQLModel, table=True):
    """How much of one metric a source saw used on one day by one team's project or model.
    A collection replaces a source's rows of the days it read."""

    __tablename__ = "cost_usage"
    __table_args__ = (
        Index("ix_cost_usage_day_team", "day", "team"),
        Index("ix_cost_usage_source_day", "source", "day"),
    )

    id: int | None = Field(default=None, primary_key=True)
    source: str = Field(max_length=63)
    day: date = Field(sa_column=Column(Date, nullable=False))
    team: str = Field(max_length=400)  # "" when no owner was found
    project: str = Field(default="", max_length=400)
    model: str = Field(default="", max_length=200)
    metric: str = Field(max_length=63)
    quantity: float = Field(sa_column=Column(Float, nullable=False))


class SourceState(SQLModel, table=True):
    """What a usage source last reported: the days read, when, and its error if it failed."""

    __tablename__ = "cost_source"

    name: str = Field(sa_column=Column(String(63), primary_key=True))
    collected_from: date | None = Field(default=None, sa_column=Column(Date, nullable=True))
    collected_through: date | None = Field(default=None, sa_column=Column(Date, nullable=True))
    collected_at: datetime | None = Field(
        default=None, sa_column=Column(DateTime(timezone=True), nullable=True)
    )
    rows: int = 0
    error: str | None = Field(default=None, sa_column=Column(Text, nullable=True))


class Budget(SQLModel, table=True):
    """A team's budget for one month (``YYYY-MM``), or for every month (``*``)."""

    __tablename__ = "cost_budget"
    __table_args__ = (UniqueConstraint("team", "month", name="uq_cost_budget_team_month"),)

    id: int | None = Field(default=None, primary_key=True)
    team: str = Field(max_length=400)
    month: str = Field(max_length=7)
    amount: float = Field(sa_column=Column(Float, nullable=False))
    updated_by: str = Field(max_length=400)
    updated_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(DateTime(timezone=True), nullable=False)
    )


class BudgetAlert(SQLModel, table=True):
    """A team's spending crossed ``threshold`` percent of its budget in a month: raised once."""

    __tablename__ = "cost_alert"
    __table_args__ = (
        UniqueConstraint("team", "month", "threshold", name="uq_cost_alert_team_month"),
    )

    id: int | None = Field(default=None, primary_key=True)
    team: str = Field(max_length=400)
    month: str = Field(max_length=7)
    threshold: int
    spent: float = Field(sa_column=Column(Float, nullable=False))
    amount: float = Field(sa_column=Column(Float, nullable=False))
    at: datetime = Field(
        default_factory=utcnow, sa_column=Column(DateTime(timezone=True), nullable=False)
    )


class BudgetOverride(SQLModel, table=True):
    """A team lead let the team train past its budget for a month, and said why."""

    __tablename__ = "cost_override"
    __table_args__ = (UniqueConstraint("team", "month", name="uq_cost_override_team_month"),)

    id: int | None = Field(default=None, primary_key=True)
    team: str = Field(max_length=400)
    month: str = Field(max_length=7)
    reason: str = Field(sa_column=Column(Text, nullable=False))
    by: str = Field(max_length=400)
    at: datetime = Field(
        default_factory=utcnow, sa_column=Column(DateTime(timezone=True), nullable=False)
    )


class BudgetIn(BaseModel):
    """Set a team's budget for a month, or for every month without one of its own."""

    model_config = ConfigDict(extra="forbid")

    amount: float | None = PydanticField(
        ge=0,
        allow_inf_nan=False,
        description="Money per month, in the price sheet's currency; null removes it",
    )
    month: str | None = PydanticField(
        None,
        pattern=MONTH_PATTERN,
        description="The month it is for (YYYY-MM); default: every month",
        examples=["2026-12"],
    )


class OverrideIn(BaseModel):
    """Let a team train past its budget this month."""

    model_config = ConfigDict(extra="forbid")

    reason: str = PydanticField(
        min_length=3, max_length=2000, description="Why, for the audit log and the team"
    )


class AlertOut(BaseModel):
    threshold: int
    spent: float
    amount: float
    at: datetime


class OverrideOut(BaseModel):
    reason: str
    by: str
    at: datetime


class BudgetOut(BaseModel):
    """A team's budgets and where this month stands."""

    team: str
    currency: str
    every_month: float | None = PydanticField(description="The budget of months without one")
    months: dict[str, float] = PydanticField(description="Budgets of single months")
    month: str = PydanticField(description="The month the figures below are for")
    amount: float | None = PydanticField(description="That month's budget; null: none")
    spent: float
    percent: float | None
    status: Literal["none", "ok", "warning", "over"]
    alerts: list[AlertOut]
    override: OverrideOut | None


class SeriesOut(BaseModel):
    """One group's cost in each period of the report, and its usage over the whole range."""

    key: str = PydanticField(description="The team, project or model; empty: unattributed")
    title: str
    total: float
    costs: list[float]
    usage: dict[str, float]


class ReportOut(BaseModel):
    """Cost by team, project or model, per day or month, with the usage behind it."""

    start: date = PydanticField(serialization_alias="from")
    end: date = PydanticField(serialization_alias="to")
    group_by: GroupBy
    granularity: Granularity
    currency: str
    periods: list[str]
    series: list[SeriesOut]
    total: float
    prices: dict[str, float]
    units: dict[str, str]
    collected_through: date | None = PydanticField(
        description="The last day every usage source has been read through"
    )


class SourceOut(BaseModel):
    name: str
    description: str
    metrics: dict[str, str]
    collected_from: date | None
    collected_through: date | None
    collected_at: datetime | None
    rows: int
    error: str | None


class CollectIn(BaseModel):
    """Read usage again for a range of days."""

    model_config = ConfigDict(extra="forbid")

    start: date = PydanticField(alias="from", description="First day")
    end: date = PydanticField(alias="to", description="Last day (included)")

"""Budgets per team and month: what was spent against them, the alerts at 80% and 100%,
a team lead's override, and the facts the training rule decides on."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlmodel import Session, col

from plugins.cost.models import (
    EVERY_MONTH,
    MONTH_PATTERN,
    Budget,
    BudgetAlert,
    BudgetOverride,
    UsageRow,
)
from portal import Conflict, Identity, InvalidInput, audit
from portal.db import utcnow
from portal.settings import Settings

THRESHOLDS = (80, 100)
# Who raises alerts, in the audit log.
WATCHER = "paved:cost"


@dataclass(frozen=True)
class BudgetView:
    """A team's budgets and where one month stands against its budget."""

    team: str
    currency: str
    every_month: float | None
    months: dict[str, float]
    month: str
    amount: float | None
    spent: float
    alerts: list[BudgetAlert]
    override: BudgetOverride | None

    @property
    def percent(self) -> float | None:
        if self.amount is None:
            return None
        if self.amount == 0:  # no money to spend: over, as the training rule has it
            return 100.0
        return round(100 * self.spent / self.amount, 1)

    @property
    def status(self) -> str:
        percent = self.percent
        if percent is None:
            return "none"
        if percent >= 100:
            return "over"
        return "warning" if percent >= THRESHOLDS[0] else "ok"


def this_month() -> str:
    return utcnow().strftime("%Y-%m")


def month_days(month: str) -> tuple[date, date]:
    first = date.fromisoformat(f"{month}-01")
    after = (first + timedelta(days=32)).replace(day=1)
    return first, after - timedelta(days=1)


def spent_by_team(
    session: Session, month: str, prices: dict[str, float], teams: list[str] | None = None
) -> dict[str, float]:
    """Money each team spent in ``month``: its usage at the price sheet's prices."""
    first, last = month_days(month)
    query = (
        select(col(UsageRow.team), col(UsageRow.metric), func.sum(col(UsageRow.quantity)))
        .where(col(UsageRow.day) >= first, col(UsageRow.day) <= last)
        .group_by(col(UsageRow.team), col(UsageRow.metric))
    )
    if teams is not None:
        query = query.where(col(UsageRow.team).in_(teams))
    spent: dict[str, float] = {}
    for team, metric, quantity in session.execute(query):
        spent[team] = spent.get(team, 0.0) + float(quantity or 0) * prices.get(metric, 0.0)
    return {team: round(money, 2) for team, money in spent.items()}


def budgets_of(session: Session, month: str) -> dict[str, float]:
    """Each team's budget for ``month``: its own for the month, else its every-month one."""
    rows = session.scalars(select(Budget).where(col(Budget.month).in_((month, EVERY_MONTH))))
    found: dict[str, float] = {}
    for budget in sorted(rows, key=lambda row: row.month != EVERY_MONTH):
        found[budget.team] = budget.amount  # a month's own budget, sorted last, wins
    return found


def get_budget(
    session: Session, team: str, settings: Settings, *, month: str | None = None
) -> BudgetView:
    """``team``'s budgets, and ``month`` (default: this one) against its budget."""
    month = month or this_month()
    rows = list(session.scalars(select(Budget).where(col(Budget.team) == team)))
    every = next((row.amount for row in rows if row.month == EVERY_MONTH), None)
    months = {row.month: row.amount for row in rows if row.month != EVERY_MONTH}
    alerts = session.scalars(
        select(BudgetAlert)
        .where(col(BudgetAlert.team) == team, col(BudgetAlert.month) == month)
        .order_by(col(BudgetAlert.threshold))
    )
    override = session.scalar(
        select(BudgetOverride).where(
            col(BudgetOverride.team) == team, col(BudgetOverride.month) == month
        )
    )
    spent = spent_by_team(session, month, settings.cost.prices, [team]).get(team, 0.0)
    return BudgetView(
        team=team,
        currency=settings.cost.currency,
        every_month=every,
        months=dict(sorted(months.items())),
        month=month,
        amount=months.get(month, every),
        spent=spent,
        alerts=list(alerts),
        override=override,
    )


def set_budget(
    session: Session,
    team: str,
    amount: float | None,
    *,
    month: str | None,
    by: Identity,
    settings: Settings,
) -> BudgetView:
    """Set (or with ``amount`` None remove) ``team``'s budget for ``month`` or every month;
    alerts the new budget is already past are raised at once."""
    key = month or EVERY_MONTH
    existing = session.scalar(
        select(Budget).where(col(Budget.team) == team, col(Budget.month) == key)
    )
    if amount is None:
        if existing is not None:
            session.delete(existing)
    elif existing is None:
        session.add(Budget(team=team, month=key, amount=amount, updated_by=by.ref))
    else:
        existing.amount, existing.updated_by, existing.updated_at = amount, by.ref, utcnow()
        session.add(existing)
    session.flush()
    shown = month or this_month()
    _forget_alerts_no_longer_crossed(session, team, shown, settings)
    raise_alerts(session, [shown], settings)
    return get_budget(session, team, settings, month=shown)


def override_budget(session: Session, team: str, reason: str, *, by: Identity) -> BudgetOverride:
    """Let ``team`` train past its budget for the rest of this month."""
    month = this_month()
    if not reason.strip():
        raise InvalidInput.for_field("reason", "empty", "why the team may go over its budget")
    existing = session.scalar(
        select(BudgetOverride).where(
            col(BudgetOverride.team) == team, col(BudgetOverride.month) == month
        )
    )
    if existing is not None:
        raise Conflict(
            f"{existing.by} already overrode {team}'s budget for {month} on "
            f"{existing.at:%Y-%m-%d}: {existing.reason}"
        )
    override = BudgetOverride(team=team, month=month, reason=reason.strip(), by=by.ref)
    session.add(override)
    session.flush()
    return override


def raise_alerts(session: Session, months: list[str], settings: Settings) -> list[BudgetAlert]:
    """Record (and audit) each threshold a team's spending has crossed in ``months`` that
    was not recorded yet: each alert is raised once per team, month and threshold."""
    raised: list[BudgetAlert] = []
    for month in months:
        budgets = budgets_of(session, month)
        if not budgets:
            continue
        spent = spent_by_team(session, month, settings.cost.prices, list(budgets))
        known = {
            (alert.team, alert.threshold)
            for alert in session.scalars(select(BudgetAlert).where(col(BudgetAlert.month) == month))
        }
        for team, amount in budgets.items():
            money = spent.get(team, 0.0)
            for threshold in THRESHOLDS:
                crossed = money > 0 and money >= amount * threshold / 100
                if not crossed or (team, threshold) in known:
                    continue
                alert = BudgetAlert(
                    team=team, month=month, threshold=threshold, spent=money, amount=amount
                )
                session.add(alert)
                raised.append(alert)
                audit.append_event(
                    session,
                    actor=WATCHER,
                    action="cost.budget.alert",
                    resource=team,
                    allowed=True,
                    outcome="succeeded",
                    reasons=[
                        f"{team} has spent {money:.2f} {settings.cost.currency} in {month}, "
                        f"{threshold}% or more of its budget of {amount:.2f}"
                    ],
                    detail={
                        "month": month,
                        "threshold": threshold,
                        "spent": money,
                        "amount": amount,
                    },
                )
    session.flush()
    return raised


def _forget_alerts_no_longer_crossed(
    session: Session, team: str, month: str, settings: Settings
) -> None:
    """A budget raised past what was spent lets its alerts be raised again later."""
    amount = budgets_of(session, month).get(team)
    spent = spent_by_team(session, month, settings.cost.prices, [team]).get(team, 0.0)
    for alert in session.scalars(
        select(BudgetAlert).where(col(BudgetAlert.team) == team, col(BudgetAlert.month) == month)
    ):
        if amount is None or spent < amount * alert.threshold / 100:
            session.delete(alert)
    session.flush()


def budget_facts(session: Session, team: str, settings: Settings) -> dict[str, Any] | None:
    """``input.context.budget`` for training: this month's budget, the spending against it
    and the override, if any; None when the team has no budget."""
    month = this_month()
    amount = budgets_of(session, month).get(team)
    if amount is None:
        return None
    spent = spent_by_team(session, month, settings.cost.prices, [team]).get(team, 0.0)
    override = session.scalar(
        select(BudgetOverride).where(
            col(BudgetOverride.team) == team, col(BudgetOverride.month) == month
        )
    )
    return {
        "team": team,
        "month": month,
        "amount": amount,
        "spent": spent,
        "currency": settings.cost.currency,
        "override": {"by": override.by, "reason": override.reason} if override else None,
    }


def list_budgets(session: Session, settings: Settings) -> list[BudgetView]:
    """Every team with a budget, this month."""
    teams = sorted(set(session.scalars(select(col(Budget.team)))))
    return [get_budget(session, team, settings) for team in teams]


def amount_from_form(text: str) -> float | None:
    """A budget typed in a form: a number of 0 or more, or nothing to remove it."""
    text = text.strip().replace(",", "")
    if not text:
        return None
    try:
        amount = float(text)
    except ValueError:
        amount = -1.0
    if not amount >= 0 or amount == float("inf"):
        raise InvalidInput.for_field(
            "amount", f"{text!r} is not an amount", "a number of 0 or more"
        )
    return amount


def month_from_form(text: str) -> str | None:
    """A month typed in a form (``YYYY-MM``), or nothing for every month."""
    text = text.strip()
    if not text:
        return None
    if not re.fullmatch(MONTH_PATTERN, text):
        raise InvalidInput.for_field("month", f"{text!r} is not a month", "YYYY-MM, e.g. 2026-12")
    return text

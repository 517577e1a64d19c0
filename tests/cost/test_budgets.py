"""Budgets per team and month: set by admins, alerts at 80% and 100% raised once and
audited, and new training of a team past its budget denied unless a team lead overrides."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlmodel import Session

from portal.db import utcnow
from portal.models import AuditEvent
from portal.usage import Usage

from conftest import BOTH_BACKENDS, FRAUD, SEARCH, ClientFactory
from cost.conftest import Collect, Meter
from factories import reload_task
from training.conftest import BOB

ACTOR_CAROL = "user:default/carol"


def spend(meter: Meter, collect: Collect, gpu_hours: float) -> None:
    """Fraud used ``gpu_hours`` today (2.5 each), collected."""
    today = utcnow().date()
    meter.usage = [Usage(today, "gpu_hours", gpu_hours, team=FRAUD)]
    task_id = collect(today, today)
    assert reload_task(meter.windows[-1].engine, task_id).status == "succeeded"


def audited(engine: Engine, action: str) -> list[AuditEvent]:
    with Session(engine) as session:
        return list(session.scalars(select(AuditEvent).where(AuditEvent.action == action)))


def test_admins_set_budgets_and_team_leads_may_not(
    client: TestClient, carol: TestClient, teams: list[str]
) -> None:
    month = utcnow().strftime("%Y-%m")
    every = client.put("/api/cost/budgets/fraud", json={"amount": 100})
    assert every.status_code == 200, every.text
    assert every.json()["every_month"] == 100
    assert every.json()["amount"] == 100
    own = client.put("/api/cost/budgets/default/fraud", json={"amount": 250, "month": month})
    assert own.json()["months"] == {month: 250}
    assert own.json()["amount"] == 250
    assert own.json()["status"] == "ok"
    assert own.json()["spent"] == 0
    denied = carol.put("/api/cost/budgets/fraud", json={"amount": 1_000_000})
    assert denied.status_code == 403
    assert carol.get("/api/cost/budgets/fraud").json()["amount"] == 250
    nothing = client.put("/api/cost/budgets/fraud", json={"amount": 0, "month": month})
    assert nothing.json()["status"] == "over"  # nothing to spend: training stops at once
    removed = client.put("/api/cost/budgets/fraud", json={"amount": None, "month": month})
    assert removed.json()["amount"] == 100


def test_bad_budgets_name_the_field_and_change_nothing(
    client: TestClient, teams: list[str]
) -> None:
    client.put("/api/cost/budgets/fraud", json={"amount": 100})
    for body, field in [
        ({"amount": -5}, "amount"),
        ({"amount": 10, "month": "2026-13"}, "month"),
        ({"amount": "lots"}, "amount"),
        ({"budget": 10}, "budget"),
    ]:
        answer = client.put("/api/cost/budgets/fraud", json=body)
        assert answer.status_code == 422, body
        fields = [problem["field"] for problem in answer.json()["errors"]]
        assert any(name.endswith(field) for name in fields), answer.json()
    infinite = client.put(  # 1e400 is read as infinity, which no JSON answer can hold
        "/api/cost/budgets/fraud",
        content=b'{"amount": 1e400}',
        headers={"Content-Type": "application/json"},
    )
    assert infinite.status_code == 422
    assert client.get("/api/cost/budgets/fraud").json()["every_month"] == 100
    unknown = client.put("/api/cost/budgets/nobody", json={"amount": 5})
    assert unknown.status_code == 404
    assert "group:default/nobody" in unknown.text


@BOTH_BACKENDS
def test_alerts_at_80_and_100_percent_are_raised_once_and_audited(
    backend: str,
    client: TestClient,
    teams: list[str],
    meter: Meter,
    collect: Collect,
    engine: Engine,
) -> None:
    client.put("/api/cost/budgets/fraud", json={"amount": 100})
    spend(meter, collect, 30)  # 75.00
    assert client.get("/api/cost/budgets/fraud").json()["alerts"] == []
    spend(meter, collect, 34)  # 85.00
    budget = client.get("/api/cost/budgets/fraud").json()
    assert budget["status"] == "warning"
    assert budget["percent"] == 85.0
    assert [a["threshold"] for a in budget["alerts"]] == [80]
    spend(meter, collect, 34)  # collected again: still 85.00, no second alert
    spend(meter, collect, 44)  # 110.00
    budget = client.get("/api/cost/budgets/fraud").json()
    assert budget["status"] == "over"
    assert [(a["threshold"], a["spent"]) for a in budget["alerts"]] == [(80, 85.0), (100, 110.0)]
    events = audited(engine, "cost.budget.alert")
    assert [(e.resource, e.detail["threshold"]) for e in events] == [(FRAUD, 80), (FRAUD, 100)]
    assert "110.00 USD" in events[1].reasons[0]
    # Raised past the spending, the budget's alerts can be raised again later.
    raised = client.put("/api/cost/budgets/fraud", json={"amount": 1000}).json()
    assert raised["alerts"] == []
    assert raised["status"] == "ok"
    listed = client.get("/api/cost/budgets").json()
    assert [b["team"] for b in listed] == [FRAUD]


def test_a_team_past_its_budget_trains_again_once_its_lead_overrides_it(
    client: TestClient, alice: TestClient, carol: TestClient, client_as: ClientFactory,
    teams: list[str], meter: Meter, collect: Collect, engine: Engine, make_project,  # type: ignore[no-untyped-def]
) -> None:  # fmt: skip
    project = make_project("over-budget", "python train.py")
    client.put("/api/cost/budgets/fraud", json={"amount": 50})
    spend(meter, collect, 24)  # 60.00 of 50
    denied = alice.post("/api/training/jobs", json={"project": project})
    assert denied.status_code == 403
    month = utcnow().strftime("%Y-%m")
    assert (
        f"{FRAUD} has spent 60 USD of its 50 USD budget for {month}: new training jobs wait "
        "for next month, unless a team lead of the team overrides the budget on its Cost tab"
    ) in denied.json()["reasons"]
    # Only a team lead of the team overrides; an engineer or another team's lead may not.
    assert alice.post("/api/cost/overrides/fraud", json={"reason": "retrain"}).status_code == 403
    other_lead = client_as("team_lead", user="user:default/dave", groups=[SEARCH])
    assert (
        other_lead.post("/api/cost/overrides/fraud", json={"reason": "retrain"}).status_code == 403
    )
    assert carol.post("/api/cost/overrides/fraud", json={"reason": ""}).status_code == 422
    overridden = carol.post("/api/cost/overrides/fraud", json={"reason": "quarter-end retraining"})
    assert overridden.status_code == 201, overridden.text
    assert overridden.json()["by"] == ACTOR_CAROL
    again = carol.post("/api/cost/overrides/fraud", json={"reason": "once more"})
    assert again.status_code == 409
    assert "quarter-end retraining" in again.text
    accepted = alice.post("/api/training/jobs", json={"project": project})
    assert accepted.status_code == 201, accepted.text
    events = audited(engine, "cost.budget.override")
    # carol's three asks (no reason, the override, a second one), and the two refused.
    assert [(e.actor, e.outcome) for e in events if e.allowed] == [
        (ACTOR_CAROL, "failed"), (ACTOR_CAROL, "succeeded"), (ACTOR_CAROL, "failed"),
    ]  # fmt: skip
    assert len([e for e in events if not e.allowed]) == 2
    budget = client.get("/api/cost/budgets/fraud").json()
    assert budget["override"]["reason"] == "quarter-end retraining"
    # Another team is not held back by fraud's budget.
    bob = client_as("ml_engineer", user=BOB, groups=[SEARCH])
    assert bob.get("/api/cost/budgets/search-ranking").json()["status"] == "none"

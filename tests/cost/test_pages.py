"""The Cost page and the Cost tab of Group pages: every team's cost, budgets and sources;
a team's chart, budget, alerts, the override button and the budget form."""

from __future__ import annotations

from fastapi.testclient import TestClient

from portal.db import utcnow
from portal.usage import Usage

from conftest import FRAUD, SEARCH
from cost.conftest import Collect, Meter

TAB = "/cost/tabs/group/default/fraud"


def spend_today(meter: Meter, collect: Collect, **gpu_hours: float) -> None:
    today = utcnow().date()
    teams = {"fraud": FRAUD, "search": SEARCH}
    meter.usage = [
        Usage(today, "gpu_hours", hours, team=teams[team]) for team, hours in gpu_hours.items()
    ]
    collect(today, today)


def test_the_cost_page_shows_each_teams_cost_budgets_and_sources(
    client: TestClient, alice: TestClient, teams: list[str], meter: Meter, collect: Collect
) -> None:
    client.put("/api/cost/budgets/fraud", json={"amount": 100})
    spend_today(meter, collect, fraud=36, search=4)  # 90.00 and 10.00
    page = alice.get("/cost")
    assert page.status_code == 200
    html = page.text
    assert 'data-cost-report="/api/cost/report?group_by=team' in html
    assert f'<tr data-key="{FRAUD}">' in html
    assert "90.00" in html
    assert f'<tr data-team="{FRAUD}" data-status="warning">' in html
    assert "past 80%" in html
    assert '<tr data-source="meter">' in html
    assert 'href="/api/cost/report?group_by=team' in html
    assert "format=csv" in html
    by_model = alice.get("/cost?group_by=model&granularity=month")
    assert by_model.status_code == 200
    assert "Unattributed" in by_model.text  # the meter names no model
    bad = alice.get("/cost?from=2026-11-05&to=2026-11-01")
    assert bad.status_code == 422
    assert "2026-11-01 is before from (2026-11-05)" in bad.text


def test_a_teams_tab_shows_its_budget_and_lets_its_lead_override_it(
    client: TestClient, alice: TestClient, carol: TestClient, teams: list[str], meter: Meter,
    collect: Collect,
) -> None:  # fmt: skip
    never = alice.get(TAB).text
    assert "No budget for" in never
    assert 'data-cost-report="/api/cost/report?group_by=project' in never
    client.put("/api/cost/budgets/fraud", json={"amount": 100})
    spend_today(meter, collect, fraud=48)  # 120.00
    over = alice.get(TAB).text
    assert 'data-status="over"' in over
    assert "Over budget: 120.00 of 100.00 USD" in over
    assert "80% of the budget spent" in over
    assert 'id="cost-override"' in over
    denied = alice.post("/cost/overrides/default/fraud", data={"reason": "please"})
    assert denied.status_code == 403
    assert "cost.budget.override" in denied.text
    done = carol.post(
        "/cost/overrides/default/fraud", data={"reason": "launch week"}, follow_redirects=False
    )
    assert done.status_code == 303
    assert done.headers["location"] == "/catalog/group/default/fraud?tab=cost"
    overridden = alice.get(TAB).text
    assert "Training past the budget allowed by user:default/carol" in overridden
    assert 'id="cost-override"' not in overridden


def test_the_budget_form_sets_removes_and_refuses_bad_amounts(
    client: TestClient, teams: list[str]
) -> None:
    saved = client.post(
        "/cost/budgets/default/fraud", data={"amount": "1,500", "month": ""}, follow_redirects=False
    )
    assert saved.status_code == 303
    assert client.get("/api/cost/budgets/fraud").json()["every_month"] == 1500
    bad = client.post("/cost/budgets/default/fraud", data={"amount": "-3", "month": ""})
    assert bad.status_code == 422
    assert "amount" in bad.text
    assert "a number of 0 or more" in bad.text
    bad_month = client.post("/cost/budgets/default/fraud", data={"amount": "5", "month": "next"})
    assert bad_month.status_code == 422
    assert "YYYY-MM" in bad_month.text
    assert client.get("/api/cost/budgets/fraud").json()["every_month"] == 1500
    client.post("/cost/budgets/default/fraud", data={"amount": "", "month": ""})
    assert client.get("/api/cost/budgets/fraud").json()["every_month"] is None

"""Cost reports: usage priced with the price sheet, by team, project or model, per day or
month, as JSON or CSV, and what bad questions are told."""

from __future__ import annotations

import csv
import io
from datetime import date, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine
from sqlmodel import Session

from plugins.cost.demo import load_demo
from portal.db import utcnow
from portal.settings import Settings
from portal.usage import Usage

from conftest import BOTH_BACKENDS, FRAUD, SEARCH
from cost.conftest import Collect, Meter

PIPELINE = "component:default/fraud-pipeline"
SEARCH_SERVICE = "component:default/search-service"


@pytest.fixture
def collected(teams: list[str], meter: Meter, collect: Collect) -> None:
    """Three days of GPU and CPU hours of two teams, across the end of October."""
    meter.usage = [
        Usage(date(2026, 10, 31), "gpu_hours", 2.0, project=PIPELINE, model="fraud-scorer"),
        Usage(date(2026, 11, 1), "gpu_hours", 4.0, project=PIPELINE, model="fraud-scorer"),
        Usage(date(2026, 11, 1), "cpu_hours", 100.0, project=PIPELINE, model="fraud-scorer"),
        Usage(date(2026, 11, 2), "gpu_hours", 10.0, project=SEARCH_SERVICE, model="ranker"),
    ]
    collect(date(2026, 10, 31), date(2026, 11, 2))


def test_a_report_by_team_per_day_prices_usage_with_the_price_sheet(
    client: TestClient, collected: None
) -> None:
    found = client.get(
        "/api/cost/report?group_by=team&from=2026-10-31&to=2026-11-02&granularity=day"
    )
    assert found.status_code == 200, found.text
    report = found.json()
    assert report["from"] == "2026-10-31"
    assert report["to"] == "2026-11-02"
    assert report["periods"] == ["2026-10-31", "2026-11-01", "2026-11-02"]
    assert report["currency"] == "USD"
    series = {s["key"]: s for s in report["series"]}
    # gpu_hours at 2.5 and cpu_hours at 0.04 (the default price sheet)
    assert series[FRAUD]["costs"] == [5.0, 14.0, 0.0]
    assert series[FRAUD]["total"] == 19.0
    assert series[FRAUD]["title"] == "Fraud"
    assert series[FRAUD]["usage"] == {"cpu_hours": 100.0, "gpu_hours": 6.0}
    assert series[SEARCH]["costs"] == [0.0, 0.0, 25.0]
    assert [s["key"] for s in report["series"]] == [SEARCH, FRAUD]  # largest first
    assert report["total"] == 44.0


@BOTH_BACKENDS
def test_a_report_by_project_or_model_per_month(
    backend: str, client: TestClient, collected: None
) -> None:
    by_project = client.get(
        "/api/cost/report?group_by=project&from=2026-10-01&to=2026-11-30&granularity=month"
    ).json()
    assert by_project["periods"] == ["2026-10", "2026-11"]
    costs = {s["key"]: s["costs"] for s in by_project["series"]}
    assert costs == {SEARCH_SERVICE: [0.0, 25.0], PIPELINE: [5.0, 14.0]}
    by_model = client.get(
        "/api/cost/report?group_by=model&from=2026-11-01&to=2026-11-30&granularity=month"
    ).json()
    assert {s["key"]: s["total"] for s in by_model["series"]} == {
        "ranker": 25.0,
        "fraud-scorer": 14.0,
    }


def test_a_report_of_one_team(client: TestClient, collected: None) -> None:
    found = client.get(f"/api/cost/report?from=2026-10-31&to=2026-11-02&team={FRAUD}").json()
    assert [s["key"] for s in found["series"]] == [FRAUD]


def test_a_report_as_csv_has_a_line_per_period_group_and_metric(
    client: TestClient, collected: None
) -> None:
    answer = client.get(
        "/api/cost/report?group_by=team&from=2026-10-31&to=2026-11-02",
        headers={"Accept": "text/csv"},
    )
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/csv")
    assert "attachment" in answer.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(answer.text)))
    assert len(rows) == 4
    assert rows[0] == {
        "period": "2026-10-31", "group_by": "team", "group": FRAUD, "metric": "gpu_hours",
        "quantity": "2", "unit": "GPU-hours", "price": "2.5", "cost": "5.00", "currency": "USD",
    }  # fmt: skip
    linked = client.get("/api/cost/report?from=2026-10-31&to=2026-11-02&format=csv")
    assert linked.text == answer.text


def test_a_period_with_no_usage_is_an_empty_report_not_an_error(
    client: TestClient, teams: list[str]
) -> None:
    report = client.get("/api/cost/report?from=2025-01-01&to=2025-01-31").json()
    assert report["series"] == []
    assert report["total"] == 0
    assert len(report["periods"]) == 31


@pytest.mark.parametrize(
    ("query", "field", "says"),
    [
        ("from=2026-11-05&to=2026-11-01", "to", "2026-11-01 is before from (2026-11-05)"),
        ("from=2020-01-01&to=2026-11-01&granularity=day", "to", "2497 days from 2020-01-01"),
        ("from=2026-13-01", "from", ""),
        ("group_by=colour", "group_by", ""),
        ("granularity=week", "granularity", ""),
    ],
)
def test_bad_report_questions_name_the_field(
    client: TestClient, query: str, field: str, says: str
) -> None:
    answer = client.get(f"/api/cost/report?{query}")
    assert answer.status_code == 422
    problem = answer.json()["errors"][0]
    assert problem["field"].endswith(field)
    assert says in problem["message"]
    assert problem["expected"]


def test_auditors_do_not_read_cost(client_as, teams: list[str]) -> None:  # type: ignore[no-untyped-def]
    auditor = client_as("auditor", user="user:default/audrey")
    assert auditor.get("/api/cost/report").status_code == 403


def test_the_demo_has_three_months_of_usage_and_a_team_past_80_percent(
    client: TestClient, engine: Engine, settings: Settings, teams: list[str]
) -> None:
    with Session(engine) as session:
        load_demo(session, settings)
        session.commit()
    today = utcnow().date()
    start = today - timedelta(days=89)
    report = client.get(f"/api/cost/report?from={start}&to={today}&granularity=month").json()
    assert [s["key"] for s in report["series"]][:1] == ["group:default/search-ranking"]
    assert len(report["series"]) == 4
    assert all(total > 0 for total in [s["total"] for s in report["series"]])
    fraud = client.get("/api/cost/budgets/fraud").json()
    assert fraud["status"] == "warning"
    assert [alert["threshold"] for alert in fraud["alerts"]] == [80]

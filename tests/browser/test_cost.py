"""Cost in a real browser: a team lead opens their team's Cost tab and sees the chart of
its cost over the last days, drawn by uPlot from the report API, and its budget; the Cost
page draws every team's."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from playwright.sync_api import Browser, expect
from sqlalchemy.engine import Engine

from portal.db import utcnow
from portal.plugins import Plugins
from portal.usage import Usage

from .conftest import LivePortal
from conftest import CAROL, FRAUD, SEARCH, issue_secret
from cost.conftest import (  # noqa: F401 (fixtures: the teams, a meter, a collector)
    Collect,
    Meter,
    collect,
    collector,
    make_project,
    meter,
    project_root,
    settings,
    teams,
)

pytestmark = [pytest.mark.browser, pytest.mark.slow]

PIPELINE = "component:default/fraud-pipeline"


def test_a_team_lead_sees_their_teams_cost_chart_and_budget(
    serve: Callable[[Plugins], LivePortal], plugins: Plugins, browser: Browser, engine: Engine,
    client: TestClient, teams: list[str], meter: Meter, collect: Collect,  # noqa: F811
) -> None:  # fmt: skip
    today = utcnow().date()
    first = today - timedelta(days=9)
    meter.usage = [
        Usage(today - timedelta(days=back), "gpu_hours", 4.0 + back, project=PIPELINE)
        for back in range(10)
    ] + [Usage(today, "gpu_hours", 2.0, team=SEARCH)]
    collect(first, today)
    spent = client.get("/api/cost/budgets/fraud").json()["spent"]
    client.put("/api/cost/budgets/fraud", json={"amount": round(spent / 0.9, 2)})
    portal = serve(plugins)
    secret = issue_secret(engine, roles=["team_lead"], user=CAROL, groups=[FRAUD])
    context = browser.new_context(extra_http_headers={"Authorization": f"Bearer {secret}"})
    page = context.new_page()
    page.set_default_timeout(15_000)
    try:
        page.goto(portal.url + "/catalog/group/default/fraud?tab=cost")
        tab = page.locator("#cost-tab")
        expect(tab.locator(".cost-budget")).to_have_attribute("data-status", "warning")
        expect(tab).to_contain_text("80% of the budget spent")
        chart = tab.locator("figure.cost-chart")
        expect(chart).to_be_visible(timeout=15_000)  # drawn: the figure is shown once uPlot drew it
        expect(chart).to_have_attribute(
            "data-drawn", "1", timeout=15_000
        )  # one project, fraud-pipeline
        expect(chart.locator("canvas")).to_have_count(1)
        expect(chart.locator(".u-legend")).to_contain_text("fraud-pipeline")
        expect(tab.locator("table.cost-series")).to_contain_text("fraud-pipeline")

        page.goto(portal.url + "/cost")
        overall = page.locator("figure.cost-chart")
        expect(overall).to_have_attribute(
            "data-drawn", "2", timeout=15_000
        )  # fraud and search-ranking
        expect(overall.locator(".u-legend")).to_contain_text("Fraud")
        expect(page.locator("#cost-budgets")).to_contain_text("past 80%")
    finally:
        context.close()

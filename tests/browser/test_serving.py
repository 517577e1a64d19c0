"""Serving a model in a real browser: from the churn Model's Serving tab, deploy a version to
staging and see it serve (real model servers, started by the portal's own worker), deploy a
second one as a canary, roll it back, and see the charts drawn from the requests."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Page, expect
from serving.conftest import (  # noqa: F401 (fixtures: the churn project and its versions)
    FEATURES,
    Register,
    project,
    project_root,
    register,
    settings,
)
from sqlalchemy.engine import Engine

from plugins.serving.local import stop_servers
from plugins.serving.traffic import Traffic
from portal.plugins import Plugins
from portal.settings import Settings

from .conftest import LivePortal

pytestmark = [pytest.mark.browser, pytest.mark.slow]

TAB = "/catalog/model/default/churn?tab=serving"
PAGE = "/serving/deployments/churn-staging"
# A model server starts in seconds, more on a busy machine: the portal waits up to
# serving.start_timeout (60 s in these tests) for it.
STARTED = 90_000


@pytest.fixture
def portal(
    serve: Callable[[Plugins], LivePortal],
    plugins: Plugins,
    project: Path,  # noqa: F811
    settings: Settings,  # noqa: F811
) -> Iterator[LivePortal]:
    """The portal with its own task worker, which starts the model servers."""
    try:
        yield serve(plugins)
    finally:
        stop_servers(settings)


def deploy_from_the_tab(page: Page, portal: LivePortal, version: str, percent: str = "") -> None:
    page.goto(portal.url + TAB)
    form = page.locator("#deploy-form")
    form.get_by_label("Version").select_option(version)
    form.get_by_label("Environment").select_option("staging")
    form.get_by_label("Canary share (%)").fill(percent)
    form.get_by_role("button", name="Deploy").click()
    expect(page).to_have_url(portal.url + PAGE)


def predict(portal: LivePortal, headers: dict[str, str], count: int) -> None:
    body = {"dataframe_split": {"columns": list(FEATURES), "data": [[70.0, 2.0]]}}
    url = f"{portal.url}/serve/churn-staging/invocations"
    with httpx.Client(headers=headers, timeout=30) as client:
        for _ in range(count):
            assert client.post(url, json=body).status_code == 200


def test_deploy_a_version_then_a_canary_and_roll_the_canary_back(
    page: Page,
    portal: LivePortal,
    register: Register,  # noqa: F811
    admin_headers: dict[str, str],
    engine: Engine,
) -> None:
    first, second = register(), register()

    deploy_from_the_tab(page, portal, first)
    expect(page.locator("#deployment-status")).to_have_text(re.compile("deploying|serving"))
    # The page reloads by itself once the version answers.
    expect(page.locator("#deployment-status")).to_have_text("serving", timeout=STARTED)
    expect(page.locator("#stable-version")).to_have_text(f"v{first}")
    expect(page.locator("#history")).to_contain_text(f"v{first} takes all traffic")

    predict(portal, admin_headers, 5)
    traffic: Traffic = portal.app.state.serving_traffic
    traffic.minutes.flush(engine)  # the portal writes them every 10 s; the test need not wait
    charts = page.locator("#serving-charts")
    expect(charts).to_be_visible()
    expect(charts.locator("canvas")).to_have_count(3)
    expect(charts.locator(".u-legend").first).to_contain_text(f"v{first} p99")
    width = charts.locator("canvas").first.evaluate("canvas => canvas.width")
    assert width > 0

    deploy_from_the_tab(page, portal, second, percent="25")
    expect(page.locator("#canary-version")).to_have_text(
        f"v{second} · 25% of traffic", timeout=STARTED
    )
    expect(page.locator("#deployment-status")).to_have_text("serving")

    page.get_by_role("button", name="Rollback").click()
    expect(page).to_have_url(portal.url + PAGE)
    expect(page.locator("#canary-version")).to_have_text("none")
    expect(page.locator("#stable-version")).to_have_text(f"v{first}")
    rollback = page.locator('#history tr[data-kind="rollback"]')
    expect(rollback).to_contain_text(f"canary v{second} rolled back; v{first} takes all traffic")
    expect(page.get_by_role("button", name="Promote canary")).to_have_count(0)

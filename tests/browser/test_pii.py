"""PII scanning in a real browser: an ML engineer opens a Dataset's PII tab, presses Scan
now, follows the scan (run by the portal's own worker) and sees the findings, masked."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from pii.conftest import (  # noqa: F401 (fixtures: the data files and their Datasets)
    customer_rows,
    data_root,
    datasets,
    settings,
)
from playwright.sync_api import Browser, expect
from sqlalchemy.engine import Engine

from portal.plugins import Plugins

from .conftest import LivePortal
from conftest import ALICE, FRAUD, issue_secret

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def test_an_ml_engineer_scans_a_dataset_and_sees_masked_findings(
    serve: Callable[[Plugins], LivePortal], plugins: Plugins, browser: Browser, engine: Engine,
    datasets: Path,  # noqa: F811
) -> None:  # fmt: skip
    portal = serve(plugins)
    secret = issue_secret(engine, roles=["ml_engineer"], user=ALICE, groups=[FRAUD])
    context = browser.new_context(extra_http_headers={"Authorization": f"Bearer {secret}"})
    page = context.new_page()
    page.set_default_timeout(30_000)  # the first scan loads the spaCy model
    try:
        page.goto(portal.url + "/catalog/dataset/default/customers?tab=pii")
        tab = page.locator("#pii-tab")
        expect(tab).to_contain_text("has not been scanned for personal data yet")
        tab.get_by_role("button", name="Scan now").click()
        latest = page.locator("#pii-latest")
        expect(latest).to_contain_text("Personal data found", timeout=60_000)
        findings = latest.locator("#pii-findings")
        expect(
            findings.locator('tr[data-column="email"][data-entity="EMAIL_ADDRESS"]')
        ).to_have_count(1)
        expect(findings.locator('tr[data-column="card"]').first).to_contain_text("•")
        expect(latest.locator("#pii-suggested")).to_have_text("pii")
        shown = latest.inner_text()
        for row in customer_rows()[:10]:  # no raw value reaches the page
            assert row["email"] not in shown
            assert row["iban"] not in shown
    finally:
        context.close()

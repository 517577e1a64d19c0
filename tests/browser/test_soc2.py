"""SOC 2 evidence in a real browser: an auditor signs in, opens the Evidence page, exports
a pack of a period (written by the portal's own worker, followed live on the page),
downloads it and the public key, and the pack verifies offline."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from plugins.soc2.pack import verify_pack
from plugins.soc2.signing import load_public_key
from portal.db import utcnow
from portal.plugins import Plugins

from .conftest import LivePortal

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def test_an_auditor_exports_a_pack_and_downloads_it(
    fresh_page: Page,
    serve_demo: Callable[[Plugins], LivePortal],
    plugins: Plugins,
    tmp_path: Path,
) -> None:
    page = fresh_page
    portal = serve_demo(plugins)
    today = utcnow().date().isoformat()
    # A real session, as a browser has: downloads carry its cookie (and the sign-in is the
    # first event of the period).
    page.goto(f"{portal.url}/auth/login?next=/soc2")
    page.get_by_role("button", name="Audrey (auditor)").click()
    expect(page).to_have_url(f"{portal.url}/soc2")
    controls = page.locator("#soc2-controls")
    expect(controls.locator("tr[data-control]")).to_have_count(6)
    expect(controls.locator('tr[data-control="CC8.1"]')).to_contain_text(
        "Changes to production and their approvals"
    )
    form = page.locator("form.soc2-export")
    form.locator('input[name="from"]').fill(today)
    form.locator('input[name="to"]').fill(today)
    form.get_by_role("button", name="Export a pack").click()
    row = page.locator('#soc2-exports tr[data-status="succeeded"]')
    expect(row).to_have_count(1, timeout=60_000)  # the page follows the export
    with page.expect_download() as pack_download:
        row.locator("a.soc2-download").click()
    pack = tmp_path / pack_download.value.suggested_filename
    pack_download.value.save_as(pack)
    with page.expect_download() as key_download:
        page.get_by_role("link", name="Public key (PEM)").click()
    key = tmp_path / "key.pem"
    key_download.value.save_as(key)
    page.reload()  # the controls now show the pack's status
    expect(controls.locator('tr[data-control="CC7.2"]')).not_to_have_attribute(
        "data-status", "none"
    )
    assert pack.name.startswith(f"evidence-{today}-{today}-")
    check = verify_pack(pack, load_public_key(key.read_bytes(), str(key)))
    assert check.is_intact, check.problems
    assert check.events >= 2  # the sign-in and the export asked for

"""The PII tab of Dataset pages: never scanned, a scan in progress followed live, the masked
findings, and a failed scan shown above the findings it did not replace."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient
from pii.conftest import CUSTOMERS, customer_rows, run_all

from portal.worker import Worker

TAB = "/pii/tabs/dataset/default/customers"


def test_the_tab_follows_a_scan_and_shows_its_masked_findings(
    datasets: Path, alice: TestClient, scans: Worker
) -> None:
    never = alice.get(TAB)
    assert "has not been scanned for personal data yet" in never.text

    asked = alice.post(
        "/pii/scans", data={"dataset": CUSTOMERS, "back": "/catalog/dataset/default/customers"},
        follow_redirects=False,
    )  # fmt: skip
    assert asked.status_code == 303
    assert asked.headers["location"] == "/catalog/dataset/default/customers"
    pending = alice.get(TAB).text
    assert 'id="pii-pending"' in pending
    assert 'hx-trigger="every 2s"' in pending  # it polls until the scan is done

    run_all(scans)
    done = alice.get(TAB).text

    assert 'hx-trigger="every 2s"' not in done
    assert "Personal data found" in done
    assert '<mark id="pii-suggested">pii</mark>' in done
    assert 'data-column="email" data-entity="EMAIL_ADDRESS"' in done
    assert "<code>j•••.•@•••••••.••m</code>" in done
    assert "60 of 60" in done
    for row in customer_rows():
        assert row["email"] not in done
        assert row["iban"] not in done


def test_a_failed_scan_is_shown_above_the_findings_it_left_in_place(
    datasets: Path, alice: TestClient, scans: Worker
) -> None:
    alice.post("/pii/scans", data={"dataset": CUSTOMERS})
    run_all(scans)
    (datasets / "customers.csv").write_bytes(b"\xff\xfe\x00binary")
    alice.post("/pii/scans", data={"dataset": CUSTOMERS})
    run_all(scans)

    tab = alice.get(TAB).text

    assert 'id="pii-failed"' in tab
    assert "customers.csv is not UTF-8 text" in tab
    assert "The findings below are from scan 1." in tab
    assert 'data-entity="EMAIL_ADDRESS"' in tab


def test_a_scan_cancelled_before_it_ran_stops_the_polling_and_says_so(
    datasets: Path, alice: TestClient, client: TestClient
) -> None:
    alice.post("/pii/scans", data={"dataset": CUSTOMERS})
    [scan] = alice.get("/api/pii/scans").json()
    assert client.post(f"/api/tasks/{scan['task_id']}/cancel").status_code == 200

    tab = alice.get(TAB).text

    assert 'hx-trigger="every 2s"' not in tab
    assert f"its task {scan['task_id']} is cancelled" in tab

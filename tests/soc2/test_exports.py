"""The evidence API: exporting a period as an auditor, downloading the pack and the key,
refusals of bad periods and of people who are not auditors, and failing collectors."""

from __future__ import annotations

import io
import zipfile
from datetime import timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from plugins.soc2.pack import verify_pack
from plugins.soc2.signing import load_public_key
from portal.db import utcnow
from portal.evidence import Evidence, EvidenceCollector
from portal.models import AuditEvent
from portal.plugins import Plugins
from portal.settings import Settings
from portal.worker import Worker

from .conftest import AUDITOR
from conftest import ClientFactory
from factories import throwaway_plugin

TODAY = utcnow().date()


def _auditor(client_as: ClientFactory) -> TestClient:
    return client_as("auditor", user=AUDITOR)


@pytest.mark.usefixtures("activity")
def test_an_auditor_exports_a_period_and_downloads_a_pack_that_verifies(
    client_as: ClientFactory, exporter: Worker, engine: Engine, tmp_path: Path
) -> None:
    auditor = _auditor(client_as)
    asked = auditor.post("/api/soc2/exports", json={"from": str(TODAY), "to": str(TODAY)})
    assert asked.status_code == 202, asked.text
    assert asked.json()["status"] == "queued"
    assert asked.json()["download"] is None
    assert exporter.run_once()
    done = auditor.get(f"/api/soc2/exports/{asked.json()['id']}").json()
    assert done["status"] == "succeeded", done["error"]
    assert set(done["controls"]) >= {"CC6.1", "CC6.2", "CC6.3", "CC7.2", "CC8.1", "C1.1"}
    downloaded = auditor.get(done["download"])
    assert downloaded.status_code == 200
    assert downloaded.headers["content-type"] == "application/zip"
    pack = tmp_path / "pack.zip"
    pack.write_bytes(downloaded.content)
    key = auditor.get("/api/soc2/public-key")
    assert key.text.startswith("-----BEGIN PUBLIC KEY-----")
    check = verify_pack(pack, load_public_key(key.content, "key"))
    assert check.is_intact, check.problems
    with Session(engine) as session:
        events = session.exec(
            select(AuditEvent).where(col(AuditEvent.action).startswith("soc2."))
        ).all()
    assert [(e.actor, e.action, e.outcome) for e in events] == [
        (AUDITOR, "soc2.evidence.export", "succeeded"),  # the request, by the gate
        (AUDITOR, "soc2.evidence.export", "succeeded"),  # the pack written, by the task
        (AUDITOR, "soc2.evidence.read", "succeeded"),  # the download
    ]
    assert events[1].detail["sha256"] == done["sha256"]


def test_a_bad_period_is_refused_naming_the_field(client_as: ClientFactory) -> None:
    auditor = _auditor(client_as)
    backwards = auditor.post("/api/soc2/exports", json={"from": "2026-03-31", "to": "2026-01-01"})
    assert backwards.status_code == 422
    assert backwards.json()["errors"] == [
        {
            "field": "to",
            "message": "2026-01-01 is before from (2026-03-31)",
            "expected": "a last day on or after the first",
        }
    ]
    quiet = auditor.post("/api/soc2/exports", json={"from": "2020-01-01", "to": "2020-03-31"})
    assert quiet.status_code == 422
    assert quiet.json()["errors"][0]["field"] == "from"
    assert "no events from 2020-01-01 to 2020-03-31" in quiet.json()["errors"][0]["message"]
    long = auditor.post("/api/soc2/exports", json={"from": "2020-01-01", "to": str(TODAY)})
    assert long.status_code == 422
    assert long.json()["errors"][0]["expected"] == "at most 400 days (soc2.max_period_days)"
    assert auditor.get("/api/soc2/exports").json() == []


def test_engineers_neither_export_nor_read_evidence(alice: TestClient) -> None:
    denied = alice.post("/api/soc2/exports", json={"from": str(TODAY), "to": str(TODAY)})
    assert denied.status_code == 403
    assert alice.get("/api/soc2/controls").status_code == 403
    assert alice.get("/api/soc2/public-key").status_code == 403


@pytest.mark.usefixtures("activity")
def test_a_pack_changed_on_disk_is_not_handed_out(
    client_as: ClientFactory, exporter: Worker, settings: Settings, engine: Engine
) -> None:
    auditor = _auditor(client_as)
    asked = auditor.post("/api/soc2/exports", json={"from": str(TODAY), "to": str(TODAY)})
    assert asked.status_code == 202
    assert exporter.run_once()
    done = auditor.get(f"/api/soc2/exports/{asked.json()['id']}").json()
    path = settings.evidence_dir / done["file_name"]
    path.write_bytes(path.read_bytes() + b"\0")
    refused = auditor.get(done["download"])
    assert refused.status_code == 409
    assert "was changed after it was written; export it again" in refused.json()["detail"]
    with Session(engine) as session:
        last = session.exec(select(AuditEvent).order_by(col(AuditEvent.id).desc())).first()
    assert last is not None
    assert (last.action, last.outcome) == ("soc2.evidence.read", "failed")


@pytest.mark.usefixtures("activity")
def test_a_failing_collector_fails_its_controls_not_the_export(
    client_as: ClientFactory, exporter: Worker, plugins: Plugins
) -> None:
    def broken(period: object) -> Evidence:
        raise RuntimeError("the change tracker is down")

    def flagged(period: object) -> Evidence:
        return Evidence(["item"], [{"item": "x"}], {}, ["one thing to look at"])

    collectors = [
        EvidenceCollector("tests.broken", "Broken", "Fails.", ("PI1.1",), broken),
        EvidenceCollector("tests.flagged", "Flagged", "Flags.", ("A1.2",), flagged),
    ]
    with throwaway_plugin(plugins, "evidence", paved_evidence_collectors=lambda: collectors):
        auditor = _auditor(client_as)
        asked = auditor.post("/api/soc2/exports", json={"from": str(TODAY), "to": str(TODAY)})
        assert exporter.run_once()
        done = auditor.get(f"/api/soc2/exports/{asked.json()['id']}").json()
        live = auditor.get("/api/soc2/evidence/tests.broken")
    assert done["status"] == "succeeded"
    assert done["controls"]["PI1.1"] == "failed"
    assert done["controls"]["A1.2"] == "attention"
    pack = auditor.get(done["download"]).content
    with zipfile.ZipFile(io.BytesIO(pack)) as archive:
        assert b"the change tracker is down" in archive.read("evidence/tests.broken.json")
    assert live.json()["error"] == "the change tracker is down"
    assert live.json()["status"] == "failed"


def test_a_collector_name_taken_twice_degrades_the_second_plugin(
    client: TestClient, plugins: Plugins
) -> None:
    def nothing(period: object) -> Evidence:
        return Evidence([], [])

    twin = EvidenceCollector("access.people", "Twin", "Same name.", ("CC6.1",), nothing)
    with throwaway_plugin(plugins, "twin", paved_evidence_collectors=lambda: [twin]):
        client.get("/api/soc2/controls")
        record = plugins.records["twin"]
    assert record.problems == ["evidence collector 'access.people' is taken"]


def test_live_evidence_of_an_unknown_collector_or_a_backwards_period(
    client_as: ClientFactory,
) -> None:
    auditor = _auditor(client_as)
    unknown = auditor.get("/api/soc2/evidence/nothing.here")
    assert unknown.status_code == 404
    assert "access.people" in unknown.json()["detail"]
    backwards = auditor.get(
        "/api/soc2/evidence/access.people",
        params={"from": str(TODAY), "to": str(TODAY - timedelta(days=1))},
    )
    assert backwards.status_code == 422
    assert backwards.json()["errors"][0]["field"] == "to"

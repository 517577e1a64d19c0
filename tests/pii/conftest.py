"""Fixtures of the PII tests: a folder of data files under the catalog's file roots, with
Dataset entities for them (one of customer records with personal data planted in known
columns, one without any, one that does not parse, one in S3), and a worker that runs
scans."""

from __future__ import annotations

import csv
import textwrap
from pathlib import Path

import pytest
from fastapi import FastAPI
from sqlalchemy.engine import Engine
from sqlmodel import Session

from catalog import service as catalog
from plugins.pii import service
from portal.gate import Authority
from portal.settings import Settings
from portal.tasks import TaskHandler
from portal.worker import Worker

from conftest import FRAUD

NAMES = ["Jane Smith", "John Miller", "Maria Garcia", "Wei Chen", "Amara Okafor", "Lucas Martin"]
CARDS = ["4111 1111 1111 1111", "5500 0000 0000 0004", "3400 0000 0000 009"]
IBANS = ["DE89370400440532013000", "GB82WEST12345698765432", "FR1420041010050500013M02606"]
ROWS = 60
CUSTOMERS = "dataset:default/customers"
METRICS = "dataset:default/metrics"


def customer_rows(count: int = ROWS) -> list[dict[str, str]]:
    """Customer records: who they are in every column but ``amount`` and ``note``."""
    return [
        {
            "customer_id": f"C{1000 + index}",
            "name": NAMES[index % len(NAMES)],
            "email": f"{NAMES[index % len(NAMES)].split()[0].lower()}.{index}@example.com",
            "phone": f"+1 212-555-{index % 100:04d}",
            "card": CARDS[index % len(CARDS)] if index % 2 == 0 else "",
            "iban": IBANS[index % len(IBANS)],
            "ip": f"10.{index % 250}.{(index * 7) % 250}.{index % 200 + 1}",
            "employee": f"E-{200000 + index}",
            "amount": f"{index * 13.37:.2f}",
            "note": "renewed the yearly plan" if index % 3 else "asked about invoices",
        }
        for index in range(count)
    ]


def write_csv(path: Path, rows: list[dict[str, str]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


@pytest.fixture
def data_root(tmp_path: Path) -> Path:
    root = tmp_path / "data"
    root.mkdir()
    return root


@pytest.fixture
def settings(settings: Settings, data_root: Path) -> Settings:
    catalog_settings = settings.catalog.model_copy(update={"file_roots": [data_root]})
    return settings.model_copy(update={"catalog": catalog_settings})


@pytest.fixture
def datasets(data_root: Path, engine: Engine, settings: Settings) -> Path:
    """The data files, and their Dataset entities in the catalog (owned by fraud)."""
    write_csv(data_root / "customers.csv", customer_rows())
    metrics = [
        {"day": f"2026-10-{d:02d}", "requests": str(d * 100), "p99": f"{d / 3:.3f}"}
        for d in range(1, 29)
    ]
    write_csv(data_root / "metrics.csv", metrics)
    (data_root / "broken.csv").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" * 20)
    catalog_file = data_root / "catalog-info.yaml"
    documents = []
    for name, location in [
        ("customers", "customers.csv"),
        ("metrics", "metrics.csv"),
        ("broken", "broken.csv"),
        ("lake", "s3://northwind-datalake/customers/"),
    ]:
        documents.append(
            textwrap.dedent(
                f"""\
                apiVersion: paved.dev/v1alpha1
                kind: Dataset
                metadata:
                  name: {name}
                spec:
                  owner: {FRAUD}
                  lifecycle: production
                  location: {location}
                  format: csv
                  classification: internal
                """
            )
        )
    catalog_file.write_text("---\n".join(documents))
    with Session(engine) as session:
        catalog.add_location(
            session, "file", str(catalog_file), by="tests", settings=settings.catalog
        )
        session.commit()
    return data_root


@pytest.fixture
def scans(app: FastAPI, engine: Engine, settings: Settings) -> Worker:
    """Runs queued scans, as the portal's worker does."""
    return Worker(
        engine,
        [TaskHandler(service.TASK_KIND, service.run_scan, title="PII scan")],
        settings.tasks,
        portal_settings=settings,
        authority=Authority(app.state.policy, app.state.plugins, engine, app.state.settings),
    )


def run_all(worker: Worker) -> int:
    ran = 0
    while worker.run_once():
        ran += 1
    return ran

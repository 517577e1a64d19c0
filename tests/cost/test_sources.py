"""Paved's own usage sources: training jobs, serving deployments, registry storage, and an
OpenCost allocation API served by a local server from answers kept in ``opencost/``."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pytest
from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlmodel import Session

from plugins.cost import service
from plugins.cost.models import UsageRow
from plugins.serving.models import Deployment, DeploymentEvent, MetricMinute
from plugins.training.models import TrainingJob
from portal.models import Task
from portal.settings import Settings
from portal.tracking import tracking_client
from portal.usage import UsageWindow

from conftest import BOTH_BACKENDS, FRAUD, SEARCH
from cost.conftest import Collect
from factories import reload_task

ANSWERS = Path(__file__).parent / "opencost"
PIPELINE = "component:default/fraud-pipeline"
NOV_2 = date(2026, 11, 2)
NOV_3 = date(2026, 11, 3)


def at(day: date, hour: int) -> datetime:
    return datetime(day.year, day.month, day.day, hour, tzinfo=UTC)


def rows(engine: Engine, source: str) -> dict[tuple[date, str, str], float]:
    """Quantities by day, team and metric (summed over projects and models)."""
    found: dict[tuple[date, str, str], float] = {}
    with Session(engine) as session:
        for row in session.scalars(select(UsageRow).where(UsageRow.source == source)):
            key = (row.day, row.team, row.metric)
            found[key] = round(found.get(key, 0.0) + row.quantity, 6)
    return found


def job_usage(*, cpu: float, gpu: float, memory: float, seconds: float) -> dict[str, float]:
    return {
        "cpu_seconds": cpu, "gpu_seconds": gpu, "max_memory_bytes": memory, "seconds": seconds,
    }  # fmt: skip


def test_training_reports_each_finished_jobs_cpu_gpu_and_memory_on_the_day_it_ended(
    engine: Engine, teams: list[str], collect: Collect
) -> None:
    with Session(engine) as session:
        for finished, usage in [
            (at(NOV_2, 23), job_usage(cpu=7200, gpu=1800, memory=4e9, seconds=3600)),
            (at(NOV_3, 1), job_usage(cpu=3600, gpu=0, memory=1e9, seconds=1800)),
            (at(NOV_3, 2), {}),  # cancelled before it ran: nothing used
        ]:
            task = Task(
                kind="training.run", title="a job", status="succeeded", finished_at=finished
            )
            session.add(task)
            session.flush()
            session.add(
                TrainingJob(
                    task_id=task.id, project=PIPELINE, model="fraud-scorer",
                    owner=FRAUD, backend="local", command=["python", "train.py"], parameters={},
                    resources={}, timeout_minutes=5, source="file:///tmp", experiment="fraud",
                    submitted_by="user:default/alice", usage=usage,
                )
            )  # fmt: skip
        session.commit()
    collect(NOV_2, NOV_3)
    assert rows(engine, "training") == {
        (NOV_2, FRAUD, "cpu_hours"): 2.0,
        (NOV_2, FRAUD, "gpu_hours"): 0.5,
        (NOV_2, FRAUD, "memory_gb_hours"): 4.0,
        (NOV_3, FRAUD, "cpu_hours"): 1.0,
        (NOV_3, FRAUD, "memory_gb_hours"): 0.5,
    }


@BOTH_BACKENDS
def test_serving_reports_replica_hours_from_a_deployments_history_and_its_requests(
    backend: str, engine: Engine, teams: list[str], collect: Collect
) -> None:
    with Session(engine) as session:
        deployment = Deployment(
            name="ranker-production", model="ranker", project="component:default/search-service",
            owner=SEARCH, environment="production", runtime="local", stable_version="2",
            serving={"replicas": {"min": 2, "max": 4}}, created_by="user:default/bob",
        )  # fmt: skip
        session.add(deployment)
        session.flush()
        for moment, kind, stable, canary in [
            (at(NOV_2, 12), "deploy", "1", None),  # 12 h of one version on the 2nd
            (at(NOV_3, 6), "canary", "1", "2"),  # two versions from 06:00 to 12:00
            (at(NOV_3, 12), "promote", "2", None),
            (at(NOV_3, 18), "removed", None, None),  # then nothing
        ]:
            session.add(
                DeploymentEvent(
                    deployment_id=deployment.id, at=moment, kind=kind, actor="user:default/bob",
                    message=kind, stable_version=stable, canary_version=canary,
                )
            )  # fmt: skip
        for minute, count in [(at(NOV_2, 13), 1500), (at(NOV_2, 14), 500), (at(NOV_3, 7), 4000)]:
            session.add(
                MetricMinute(
                    deployment="ranker-production",
                    version="1",
                    minute=minute,
                    requests=count,
                    errors=0,
                )
            )
        session.commit()
    collect(NOV_2, NOV_3)
    assert rows(engine, "serving") == {
        (NOV_2, SEARCH, "replica_hours"): 2 * 12.0,
        (NOV_2, SEARCH, "thousand_requests"): 2.0,
        # 06:00 of one version, 6 h of two, 6 h of one, then removed: 18 h of versions
        (NOV_3, SEARCH, "replica_hours"): 2 * (6 + 2 * 6 + 6.0),
        (NOV_3, SEARCH, "thousand_requests"): 4.0,
    }


def test_storage_reports_each_registered_versions_artifacts_in_gb_months(
    engine: Engine, settings: Settings, mlflow_store: Path, teams: list[str], tmp_path: Path
) -> None:
    client = tracking_client(settings)
    experiment = client.create_experiment("storage")
    run = client.create_run(experiment)
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "weights.bin").write_bytes(b"\0" * 3_000_000)
    (folder / "nested").mkdir()
    (folder / "nested" / "vocab.txt").write_bytes(b"a" * 100_000)
    client.log_artifacts(run.info.run_id, str(folder), artifact_path="model")
    client.create_registered_model("fraud-scorer")
    client.create_model_version("fraud-scorer", f"{run.info.artifact_uri}/model", run.info.run_id)
    today = datetime.now(UTC).date()
    from plugins.registry.usage import SOURCE

    found = list(SOURCE.collect(UsageWindow(today - timedelta(days=1), today, engine, settings)))
    assert [usage.day for usage in found] == [today]  # registered today: not yesterday
    days_in_month = (
        (today.replace(day=28) + timedelta(days=4)).replace(day=1) - timedelta(days=1)
    ).day
    assert found[0].quantity == pytest.approx(0.0031 / days_in_month)
    assert found[0].model == "fraud-scorer"
    assert found[0].team is None  # no Model entity says who owns it


class Answers(BaseHTTPRequestHandler):
    """An OpenCost allocation API answering from ``opencost/``, remembering what it was asked."""

    asked: list[dict[str, list[str]]] = []
    status = 200

    def do_GET(self) -> None:
        url = urlparse(self.path)
        Answers.asked.append(parse_qs(url.query))
        body = (ANSWERS / "allocation-namespace-1d.json").read_bytes()
        if url.path != "/allocation" or Answers.status != 200:
            body = json.dumps({"code": Answers.status, "message": "query failed"}).encode()
        self.send_response(200 if url.path == "/allocation" else 404)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def opencost() -> Iterator[str]:
    """The local allocation API's address."""
    Answers.asked, Answers.status = [], 200
    server = ThreadingHTTPServer(("127.0.0.1", 0), Answers)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def settings(settings: Settings, opencost: str) -> Settings:  # type: ignore[override]
    cost = settings.cost.model_copy(
        update={
            "opencost": settings.cost.opencost.model_copy(
                update={"url": opencost, "teams": {"ml-fraud": FRAUD}}
            )
        }
    )
    return settings.model_copy(update={"cost": cost})


def test_opencost_namespaces_usage_goes_to_their_teams_per_day(
    engine: Engine, teams: list[str], collect: Collect
) -> None:
    task = reload_task(engine, collect(NOV_2, NOV_3))
    assert task.status == "succeeded", task.error
    asked = Answers.asked[0]
    assert asked["window"] == ["2026-11-02T00:00:00Z,2026-11-04T00:00:00Z"]
    assert asked["aggregate"] == ["namespace"]
    assert asked["step"] == ["1d"]
    found = rows(engine, "opencost")
    # ml-fraud is the fraud team's (cost.opencost.teams); search-ranking's namespace is the
    # Group of its name; the cluster's idle capacity is nobody's.
    assert found[(NOV_2, FRAUD, "cpu_hours")] == 48.0
    assert found[(NOV_3, FRAUD, "cpu_hours")] == 72.0
    assert found[(NOV_2, FRAUD, "gpu_hours")] == 8.0
    assert found[(NOV_2, FRAUD, "memory_gb_hours")] == 512.0
    assert found[(NOV_2, FRAUD, "storage_gb_months")] == pytest.approx(
        100 * 24 / (24 * 30), abs=1e-6
    )
    assert found[(NOV_2, SEARCH, "cpu_hours")] == 24.0
    assert not [key for key in found if key[1] in ("", "group:default/__idle__")]


def test_an_opencost_that_fails_keeps_what_it_reported_and_says_why(
    engine: Engine, teams: list[str], collect: Collect
) -> None:
    assert reload_task(engine, collect(NOV_2, NOV_3)).status == "succeeded"
    before = rows(engine, "opencost")
    assert before[(NOV_2, SEARCH, "cpu_hours")] == 24.0
    Answers.status = 500
    task = reload_task(engine, collect(NOV_2, NOV_3))
    assert task.status == "failed"
    with Session(engine) as session:
        error = service.source_states(session)["opencost"].error or ""
    assert "answered no allocations (query failed)" in error
    assert rows(engine, "opencost") == before

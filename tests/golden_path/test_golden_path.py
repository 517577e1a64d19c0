"""The golden path end to end, through the REST API as the people who do it: a project
generated from the classification template, trained on this machine, registered, approved,
served in staging then production, a new version tried as a canary and promoted; then a
broken version as a canary, rolled back by the canary's judge by itself. Every step is in
the audit log."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from serving.conftest import BROKEN_MODEL
from sqlalchemy.engine import Engine
from sqlmodel import Session

from catalog import service as catalog
from plugins.serving import apply
from plugins.serving import service as serving
from plugins.serving.local import stop_servers
from plugins.training import service as training
from portal import audit
from portal.gate import Authority
from portal.settings import Settings
from portal.tracking import ensure_experiment, tracking_client
from portal.worker import Worker
from scaffolder import execution
from scaffolder.golden_paths import GOLDEN_PATHS

from conftest import ALICE, CAROL, FRAUD

NAME = "churn-predictor"
VERSIONS = f"/api/registry/models/{NAME}/versions"
DEPLOYMENTS = "/api/serving/deployments"
PRODUCTION = f"{NAME}-production"
ROW = {"dataframe_split": {"columns": ["amount", "account_age_days", "items", "night_time"],
                          "data": [[120.0, 30, 4, 1], [80.0, 1400, 1, 0]]}}  # fmt: skip


@pytest.fixture
def settings(settings: Settings) -> Settings:
    roots = [GOLDEN_PATHS, settings.git_root]
    return settings.model_copy(
        update={
            "catalog": settings.catalog.model_copy(update={"file_roots": roots}),
            "serving": settings.serving.model_copy(update={"min_canary_requests": 10}),
        }
    )


@pytest.fixture
def worker(app: FastAPI, engine: Engine, settings: Settings) -> Iterator[Worker]:
    """Runs the scaffolder's runs, training jobs and serving changes, as the portal's does;
    the model servers it started stop after the test."""
    yield Worker(
        engine,
        [execution.HANDLER, training.HANDLER, apply.HANDLER],
        settings.tasks,
        portal_settings=settings,
        authority=Authority(
            app.state.policy, app.state.plugins, app.state.engine, app.state.settings
        ),
    )
    stop_servers(settings)


def run_tasks(worker: Worker) -> None:
    while worker.run_once():
        pass


def train(alice: TestClient, worker: Worker, **parameters: Any) -> str:
    job = alice.post("/api/training/jobs", json={"project": f"component:default/{NAME}",
                                                 "parameters": parameters})  # fmt: skip
    assert job.status_code == 201, job.text
    run_tasks(worker)
    done = alice.get(f"/api/training/jobs/{job.json()['id']}").json()
    assert done["status"] == "succeeded", done
    return str(done["mlflow_run_id"])


def register_and_approve(alice: TestClient, carol: TestClient, run_id: str) -> str:
    registered = alice.post(VERSIONS, json={"run_id": run_id})
    assert registered.status_code == 201, registered.text
    version = registered.json()["version"]
    approved = carol.post(f"{VERSIONS}/{version}/approvals", json={"comment": "looks right"})
    assert approved.status_code == 201, approved.text
    return str(version)


def deploy(client: TestClient, worker: Worker, version: str, environment: str,
           **extra: Any) -> dict[str, Any]:  # fmt: skip
    started = client.post(DEPLOYMENTS, json={"model": NAME, "version": version,
                                             "environment": environment, **extra})  # fmt: skip
    assert started.status_code == 202, started.text
    run_tasks(worker)
    found = client.get(f"{DEPLOYMENTS}/{started.json()['name']}").json()
    assert found["status"] == "serving", found
    return dict(found)


@pytest.mark.slow
def test_the_golden_path_from_template_to_production_with_a_canary_rolled_back_by_itself(
    engine: Engine, settings: Settings, worker: Worker, client: TestClient, alice: TestClient,
    carol: TestClient, mlflow_store: Path,
) -> None:  # fmt: skip
    with Session(engine) as session:
        catalog.add_location(session, "file", str(GOLDEN_PATHS / "catalog-info.yaml"),
                             by="tests", settings=settings.catalog)  # fmt: skip
        session.commit()

    generated = alice.post(
        "/api/scaffolder/v2/tasks",
        json={"templateRef": "template:default/classification-model",
              "values": {"name": NAME, "owner": FRAUD}},
    )  # fmt: skip
    assert generated.status_code == 201, generated.text
    run_tasks(worker)
    assert alice.get(f"/api/scaffolder/v2/tasks/{generated.json()['id']}").json()["status"] == (
        "completed"
    )

    first = register_and_approve(alice, carol, train(alice, worker))
    staging = deploy(alice, worker, first, "staging")
    answer = alice.post(f"/serve/{staging['name']}/invocations", json=ROW)
    assert answer.status_code == 200, answer.text
    assert len(answer.json()["predictions"]) == 2

    production = deploy(alice, worker, first, "production")
    assert production["stable_version"] == first
    second = register_and_approve(alice, carol, train(alice, worker, algorithm="random-forest"))
    canary = deploy(alice, worker, second, "production", canary_percent=10)
    assert (canary["canary_version"], canary["canary_percent"]) == (second, 10)
    promoted = alice.patch(f"{DEPLOYMENTS}/{PRODUCTION}", json={"promote": True})
    assert promoted.status_code == 200, promoted.text
    assert promoted.json()["stable_version"] == second

    broken = register_and_approve(alice, carol, _log_broken_run(settings))
    deploy(alice, worker, broken, "production", canary_percent=50)
    deadline = time.monotonic() + 20
    while alice.get(f"{DEPLOYMENTS}/{PRODUCTION}").json()["canary_version"] == broken:
        assert time.monotonic() < deadline, "the broken canary was not rolled back"
        alice.post(f"/serve/{PRODUCTION}/invocations", json=ROW)
    after = alice.get(f"{DEPLOYMENTS}/{PRODUCTION}").json()
    assert after["stable_version"] == second
    assert after["events"][0]["kind"] == "rollback"
    assert after["events"][0]["actor"] == serving.JUDGE
    for _ in range(5):
        answer = alice.post(f"/serve/{PRODUCTION}/invocations", json=ROW)
        assert answer.status_code == 200
        assert answer.headers["x-paved-version"] == second

    trail = client.get("/api/audit/events?limit=500").json()["events"]
    done = [(e["actor"], e["action"]) for e in reversed(trail) if e["outcome"] == "succeeded"]
    for step in [
        (ALICE, "scaffolder.template.run"),
        (ALICE, "training.job.submit"),
        (ALICE, "registry.model.register"),
        (CAROL, "registry.model.approve"),
        (ALICE, "serving.deployment.create"),
        (ALICE, "serving.deployment.update"),
        (serving.JUDGE, "serving.deployment.rollback"),
    ]:
        assert step in done, step
    rollback = next(e for e in trail if e["actor"] == serving.JUDGE)
    assert rollback["reasons"][0].startswith(f"canary v{broken} error rate")
    with Session(engine) as session:
        assert audit.verify_chain(session).broken_at is None


def _log_broken_run(settings: Settings) -> str:
    """A run of the project's experiment that logged a model failing every prediction."""
    import mlflow

    experiment = ensure_experiment(settings, NAME)
    run = tracking_client(settings).create_run(experiment)
    code = settings.data_dir / "broken_model.py"
    code.write_text(BROKEN_MODEL)
    mlflow.set_tracking_uri(settings.tracking_uri)
    with mlflow.start_run(run_id=run.info.run_id):
        mlflow.pyfunc.log_model(name="model", python_model=str(code), pip_requirements=[])
    return str(run.info.run_id)

"""Deployments through the API on the local runtime: real model server processes for versions
registered in a real MLflow store, predictions through the router, canaries, promotion,
rollbacks by a person and by the canary's judge, the production policy, and bad input."""

from __future__ import annotations

import json
import os
import shutil
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from serving.conftest import FEATURES, MODEL, Register, run_tasks, training_rows
from sqlalchemy.engine import Engine

from plugins.serving import service
from plugins.serving.local import servers_for
from plugins.serving.runtimes import DeploymentState, ServingRuntime
from portal.plugins import Plugins
from portal.settings import Settings
from portal.worker import Worker

from conftest import ALICE
from factories import throwaway_plugin

DEPLOYMENTS = "/api/serving/deployments"
STAGING = "churn-staging"


def deploy(client: TestClient, version: str, environment: str = "staging", **extra: Any) -> Any:
    return client.post(
        DEPLOYMENTS, json={"model": MODEL, "version": version, "environment": environment, **extra}
    )


def predict(client: TestClient, name: str, payload: dict[str, Any] | None = None) -> Any:
    body = payload or {"dataframe_split": {"columns": list(FEATURES), "data": [[70.0, 2.0]]}}
    return client.post(f"/serve/{name}/invocations", json=body)


def served_by(client: TestClient, name: str, count: int) -> dict[str, int]:
    """How many of ``count`` predictions each version answered."""
    seen: dict[str, int] = {}
    for _ in range(count):
        answer = predict(client, name)
        version = answer.headers["x-paved-version"]
        seen[version] = seen.get(version, 0) + 1
    return seen


def audit_actions(client: TestClient, action: str) -> list[dict[str, Any]]:
    return client.get(f"/api/audit/events?action={action}").json()["events"]


@pytest.mark.slow
def test_a_version_serves_then_a_canary_is_split_promoted_and_rolled_back(
    project: Path, register: Register, alice: TestClient, deployer: Worker, client: TestClient
) -> None:
    first = register()
    started = deploy(alice, first)
    assert started.status_code == 202, started.text
    assert started.json()["status"] == "deploying"
    assert started.json()["pending"] == {"stable": first}
    assert predict(alice, STAGING).status_code == 503  # nothing answers before the task
    assert run_tasks(deployer) == 1
    serving = alice.get(f"{DEPLOYMENTS}/{STAGING}").json()
    assert serving["status"] == "serving", serving
    assert serving["stable_version"] == first
    assert serving["url"].endswith(f"/serve/{STAGING}/invocations")
    assert serving["thresholds"] == {
        "max_error_rate": 0.2,
        "max_p99_ms": 5000.0,
        "drift_threshold": 0.2,
    }

    # Every input format of MLflow's scoring protocol reaches the model through the router.
    payloads = [
        {"dataframe_split": {"columns": list(FEATURES), "data": [[70.0, 2.0], [20.0, 1.0]]}},
        {"dataframe_records": [{"amount": 70.0, "items": 2.0}, {"amount": 20.0, "items": 1.0}]},
        {"instances": [{"amount": 70.0, "items": 2.0}, {"amount": 20.0, "items": 1.0}]},
        {"inputs": {"amount": [70.0, 20.0], "items": [2.0, 1.0]}},
    ]
    for payload in payloads:
        answer = predict(alice, STAGING, payload)
        assert answer.status_code == 200, answer.text
        assert answer.json() == {"predictions": [1, 0]}
        assert answer.headers["x-paved-version"] == first

    second = register()
    canary = deploy(alice, second, canary_percent=50)
    assert canary.status_code == 202, canary.text
    run_tasks(deployer)
    split = alice.get(f"{DEPLOYMENTS}/{STAGING}").json()
    assert (split["stable_version"], split["canary_version"], split["canary_percent"]) == (
        first, second, 50
    )  # fmt: skip
    seen = served_by(alice, STAGING, 60)
    assert set(seen) == {first, second}
    assert min(seen.values()) >= 10, seen

    everything = alice.patch(f"{DEPLOYMENTS}/{STAGING}", json={"canary_percent": 100})
    assert everything.status_code == 200, everything.text
    assert served_by(alice, STAGING, 10) == {second: 10}
    promoted = alice.patch(f"{DEPLOYMENTS}/{STAGING}", json={"promote": True}).json()
    assert (promoted["stable_version"], promoted["canary_version"]) == (second, None)
    assert promoted["previous_version"] == first
    run_tasks(deployer)  # settles: the old version stays warm for a rollback
    assert set(alice.get(f"{DEPLOYMENTS}/{STAGING}").json()["endpoints"]) == {first, second}

    rolled = alice.post(f"{DEPLOYMENTS}/{STAGING}/rollback")
    assert rolled.status_code == 200, rolled.text
    assert rolled.json()["stable_version"] == first
    assert rolled.json()["message"] == f"v{second} rolled back to v{first}"
    assert served_by(alice, STAGING, 5) == {first: 5}  # at once, before any task ran
    run_tasks(deployer)
    assert set(alice.get(f"{DEPLOYMENTS}/{STAGING}").json()["endpoints"]) == {first}
    nothing_left = alice.post(f"{DEPLOYMENTS}/{STAGING}/rollback")
    assert nothing_left.status_code == 409
    assert "no canary and no previous version" in nothing_left.json()["detail"]

    history = alice.get(f"{DEPLOYMENTS}/{STAGING}").json()["events"]
    assert [event["kind"] for event in reversed(history)] == [
        "deploy", "canary", "percent", "promote", "rollback"
    ]  # fmt: skip
    assert all(event["actor"] == ALICE for event in history)
    created = audit_actions(client, "serving.deployment.create")
    # Each deploy: the request, then the switch the task made for alice.
    assert [(e["actor"], e["outcome"], e["detail"].get("via")) for e in reversed(created)] == [
        (ALICE, "succeeded", "token"), (ALICE, "succeeded", "task"),
        (ALICE, "succeeded", "token"), (ALICE, "succeeded", "task"),
    ]  # fmt: skip
    assert len(audit_actions(client, "serving.deployment.rollback")) == 2  # one refused: 409
    assert audit_actions(client, "serving.deployment.update")[0]["outcome"] == "succeeded"

    deleted = alice.delete(f"{DEPLOYMENTS}/{STAGING}")
    assert deleted.status_code == 202
    assert predict(alice, STAGING).status_code == 503
    run_tasks(deployer)
    assert alice.get(f"{DEPLOYMENTS}/{STAGING}").status_code == 404
    assert predict(alice, STAGING).status_code == 404


@pytest.mark.slow
def test_a_failing_canary_is_rolled_back_by_the_judge_with_its_reason_audited(
    app: FastAPI, project: Path, register: Register, alice: TestClient, deployer: Worker,
    client: TestClient,
) -> None:  # fmt: skip
    stable = register()
    deploy(alice, stable)
    run_tasks(deployer)
    broken = register(broken=True)
    assert deploy(alice, broken, canary_percent=50).status_code == 202
    run_tasks(deployer)
    answers = [predict(alice, STAGING) for _ in range(40)]
    failed = [a for a in answers if a.headers["x-paved-version"] == broken]
    assert failed
    assert all(a.status_code == 500 for a in failed)
    assert "this version is broken" in failed[0].json()["message"]
    assert all(a.status_code == 200 for a in answers if a not in failed)

    # The portal's judge looks every second (serving.judge_interval), by itself.
    deadline = time.monotonic() + 10
    while (after := alice.get(f"{DEPLOYMENTS}/{STAGING}").json())["canary_version"]:
        assert time.monotonic() < deadline, after
        time.sleep(0.2)
    assert (after["stable_version"], after["canary_version"]) == (stable, None)
    assert after["message"].startswith(f"canary v{broken} rolled back; v{stable} takes all")
    assert f"canary v{broken} error rate" in after["message"]
    assert after["events"][0]["actor"] == service.JUDGE
    assert served_by(alice, STAGING, 10) == {stable: 10}
    event = audit_actions(client, "serving.deployment.rollback")[0]
    assert event["actor"] == service.JUDGE
    assert event["resource"] == f"deployment:{STAGING}"
    assert event["reasons"][0].startswith(f"canary v{broken} error rate")
    assert event["detail"]["automatic"] is True


@pytest.mark.slow
def test_a_server_that_does_not_start_leaves_the_previous_version_serving(
    project: Path, register: Register, alice: TestClient, deployer: Worker, client: TestClient,
    settings: Settings,
) -> None:  # fmt: skip
    stable = register()
    deploy(alice, stable)
    run_tasks(deployer)
    bad = register()
    assert deploy(alice, bad).status_code == 202
    # Its files go bad after the request was accepted: the server cannot load the model.
    model_dir = _local_artifacts(settings, bad)
    for pickled in model_dir.glob("model.*"):
        pickled.write_bytes(b"not a model")
    run_tasks(deployer)
    after = alice.get(f"{DEPLOYMENTS}/{STAGING}").json()
    assert after["status"] == "serving"
    assert after["stable_version"] == stable
    assert after["pending"] is None
    assert f"v{bad} did not come up: model server for churn v{bad}" in after["message"]
    assert after["message"].endswith(f"v{stable} still serves")
    assert after["events"][0]["kind"] == "failed"
    assert served_by(alice, STAGING, 3) == {stable: 3}
    failed = audit_actions(client, "serving.deployment.create")[0]
    assert (failed["actor"], failed["outcome"]) == (ALICE, "failed")
    assert "did not come up" not in failed["detail"]["error"]  # the runtime's own words
    assert f"churn v{bad}" in failed["detail"]["error"]


def _local_artifacts(settings: Settings, version: str) -> Path:
    """The folder of a model version's files in the embedded store."""
    from portal.tracking import tracking_client

    uri = tracking_client(settings).get_model_version_download_uri(MODEL, version)
    return Path(urlparse(uri).path if "://" in uri else uri)


def test_production_says_which_of_its_conditions_are_missing(
    project: Path, register: Register, alice: TestClient, approve: Callable[[str], None],
) -> None:  # fmt: skip
    version = register()
    refused = deploy(alice, version, "production")
    assert refused.status_code == 403
    assert refused.json()["reasons"] == [
        f"version {version} of churn is not approved: a team lead of group:default/fraud must "
        "approve it before it goes to production"
    ]
    approve(version)
    catalog_file = project / "catalog-info.yaml"
    catalog_file.write_text(
        catalog_file.read_text().replace("paved.dev/classification-approved-by", "reviewed-by")
    )
    settings_file = project / "paved-project.yaml"
    settings_file.write_text(settings_file.read_text().replace("enabled: true", "enabled: false"))
    alice.post("/api/catalog/refresh", json={"entityRef": "dataset:default/churn-train"})
    refused = deploy(alice, version, "production").json()
    assert refused["reasons"] == [
        "monitoring is not configured: paved-project.yaml needs a monitoring section with "
        "enabled: true and maxErrorRate or maxP99Ms",
        "training dataset dataset:default/churn-train has neither a clean PII scan nor an "
        "approved classification (annotation paved.dev/classification-approved-by)",
    ]
    assert deploy(alice, version, "staging").status_code == 202  # staging asks for none of it


def test_a_clean_pii_scan_from_a_plugin_clears_the_training_data(
    project: Path, register: Register, alice: TestClient, approve: Callable[[str], None],
    plugins: Plugins,
) -> None:  # fmt: skip
    version = register()
    approve(version)
    catalog_file = project / "catalog-info.yaml"
    catalog_file.write_text(
        catalog_file.read_text().replace("paved.dev/classification-approved-by", "reviewed-by")
    )
    alice.post("/api/catalog/refresh", json={"entityRef": "dataset:default/churn-train"})
    assert deploy(alice, version, "production").status_code == 403

    def paved_policy_context(action: str, user: Any, resource: Any) -> dict[str, Any]:
        return {"pii_scans": {"dataset:default/churn-train": "clean"}}

    with throwaway_plugin(plugins, "pii_scanner", paved_policy_context=paved_policy_context):
        allowed = deploy(alice, version, "production")
    assert allowed.status_code == 202, allowed.text
    assert allowed.json()["name"] == "churn-production"


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        ({"model": "nope", "version": "1", "environment": "staging"}, 404, None),
        ({"model": MODEL, "version": "99", "environment": "staging"}, 404, None),
        ({"model": MODEL, "version": "1", "environment": "moon"}, 422, "environment"),
        ({"model": MODEL, "version": "one", "environment": "staging"}, 422, "version"),
        ({"model": MODEL, "version": "1", "environment": "staging", "canary_percent": 150}, 422,
         "canary_percent"),
        ({"model": MODEL, "version": "1", "environment": "staging", "canary_percent": 10}, 422,
         "canary_percent"),
        ({"model": MODEL, "version": "1", "environment": "staging", "runtime": "mainframe"}, 422,
         "runtime"),
        ({"model": MODEL, "version": "1", "environment": "staging", "name": "Bad Name!"}, 422,
         "name"),
    ],
)  # fmt: skip
def test_bad_deploy_requests_name_their_field_and_change_nothing(
    project: Path, register: Register, alice: TestClient, client: TestClient,
    body: dict[str, Any], status: int, field: str | None,
) -> None:  # fmt: skip
    register()
    answer = alice.post(DEPLOYMENTS, json=body)
    assert answer.status_code == status, answer.text
    problem = answer.json()
    if field is not None:
        assert [error["field"] for error in problem["errors"]] == [field], problem
        assert problem["errors"][0]["expected"]
    assert alice.get(DEPLOYMENTS).json() == []
    assert [t for t in client.get("/api/tasks").json() if t["kind"] == "serving.apply"] == []


def test_a_version_whose_files_are_gone_is_refused(
    project: Path, register: Register, alice: TestClient, settings: Settings
) -> None:
    version = register()
    shutil.rmtree(settings.mlflow_dir / "artifacts")
    answer = deploy(alice, version)
    assert answer.status_code == 422
    error = answer.json()["errors"][0]
    assert error["field"] == "version"
    assert error["message"].startswith(f"the model files of churn v{version} are missing")
    assert alice.get(DEPLOYMENTS).json() == []


def test_canary_changes_outside_0_to_100_or_without_a_canary_are_refused(
    project: Path, register: Register, alice: TestClient
) -> None:
    deploy(alice, register())
    for bad in (-1, 101, "ten"):
        answer = alice.patch(f"{DEPLOYMENTS}/{STAGING}", json={"canary_percent": bad})
        assert answer.status_code == 422, answer.text
        assert answer.json()["errors"][0]["field"] == "canary_percent"
    no_canary = alice.patch(f"{DEPLOYMENTS}/{STAGING}", json={"canary_percent": 20})
    assert no_canary.status_code == 409
    assert "has no canary" in no_canary.json()["detail"]
    busy = deploy(alice, register())
    assert busy.status_code == 409
    assert "is already bringing up v1" in busy.json()["detail"]


def test_predictions_need_a_token_with_a_role_that_reads_predictions(
    project: Path, register: Register, alice: TestClient, anonymous_client: TestClient,
    client_as: Callable[..., TestClient],
) -> None:  # fmt: skip
    deploy(alice, register())
    assert predict(anonymous_client, STAGING).status_code == 401
    auditor = client_as("auditor", user="user:default/erin")
    denied = predict(auditor, STAGING)
    assert denied.status_code == 403
    assert "serving.prediction.read" in denied.json()["reasons"][0]


def test_people_without_the_role_cannot_deploy_and_learn_why(
    project: Path, register: Register, dave: TestClient
) -> None:
    answer = deploy(dave, register())
    assert answer.status_code == 403
    assert answer.json()["reasons"] == [
        "none of your roles (data_scientist) allows serving.deployment.create"
    ]


def test_a_plugin_adds_a_serving_runtime_and_a_taken_name_degrades_its_plugin(
    app: FastAPI, plugins: Plugins, project: Path, register: Register, alice: TestClient,
    deployer: Worker, settings: Settings,
) -> None:  # fmt: skip
    applied: list[DeploymentState] = []

    def apply(
        state: DeploymentState, _settings: Settings, log: Callable[[str], None]
    ) -> dict[str, str]:
        applied.append(state)
        log("applied on the edge")
        return {"*": "http://127.0.0.1:9/"}

    edge = ServingRuntime("edge", "Edge devices", apply, lambda *_: None, splits_traffic=True)
    impostor = ServingRuntime("local", "Another local runtime", apply, lambda *_: None)
    with (
        throwaway_plugin(plugins, "edge", paved_serving_runtimes=lambda settings: [edge]),
        throwaway_plugin(
            plugins, "zz_impostor", paved_serving_runtimes=lambda settings: [impostor]
        ),
    ):
        runtimes = service.available_runtimes(plugins, settings)
        app.state.serving_runtimes = runtimes  # as the portal's start-up collects them
        assert runtimes["edge"] is edge
        assert runtimes["local"] is not impostor
        assert plugins.records["zz_impostor"].status == "degraded"  # "serving" came first
        started = deploy(alice, register(), runtime="edge")
        assert started.status_code == 202, started.text
        assert run_tasks(deployer) == 1
    done = alice.get(f"{DEPLOYMENTS}/{STAGING}").json()
    assert done["status"] == "serving", done
    assert done["endpoints"] == {"*": "http://127.0.0.1:9/"}
    assert applied[0].stable.model_uri == f"models:/{MODEL}/1"
    assert applied[0].team == "fraud"
    assert "applied on the edge" in [
        line["message"] for line in alice.get(f"{DEPLOYMENTS}/{STAGING}/log").json()
    ]


@pytest.mark.slow
def test_drift_and_the_charts_figures_come_from_the_requests(
    app: FastAPI, engine: Engine, project: Path, register: Register, alice: TestClient,
    deployer: Worker,
) -> None:  # fmt: skip
    deploy(alice, register())
    run_tasks(deployer)
    drift = alice.get(f"{DEPLOYMENTS}/{STAGING}/drift").json()
    assert [(d["feature"], d["psi"], d["alert"]) for d in drift] == [
        ("amount", None, False), ("items", None, False), ("label", None, False)
    ]  # fmt: skip

    like_training = training_rows(200, seed=11)
    assert predict(alice, STAGING, _split(like_training)).status_code == 200
    calm = {d["feature"]: d for d in alice.get(f"{DEPLOYMENTS}/{STAGING}/drift").json()}
    assert calm["amount"]["observed"] == 200
    assert calm["amount"]["psi"] < 0.1
    assert not calm["amount"]["alert"]

    shifted = training_rows(400, seed=12, shift=25)
    assert predict(alice, STAGING, _split(shifted)).status_code == 200
    drifted = {d["feature"]: d for d in alice.get(f"{DEPLOYMENTS}/{STAGING}/drift").json()}
    assert drifted["amount"]["psi"] > 0.2
    assert drifted["amount"]["alert"]
    assert not drifted["items"]["alert"]

    app.state.serving_traffic.minutes.flush(engine)
    points = alice.get(f"{DEPLOYMENTS}/{STAGING}/metrics?minutes=5").json()
    assert sum(point["requests"] for point in points) == 2
    assert all(point["version"] == "1" and point["errors"] == 0 for point in points)
    assert all(point["p99_ms"] is not None for point in points)


def _split(rows: list[list[float]]) -> dict[str, Any]:
    return {"dataframe_split": {"columns": list(FEATURES), "data": rows}}


def test_deploy_requests_are_documented_in_the_openapi_document(client: TestClient) -> None:
    document = client.get("/api/openapi.json").json()
    paths = document["paths"]
    assert set(paths["/api/serving/deployments"]) == {"get", "post"}
    assert set(paths["/api/serving/deployments/{name}"]) == {"get", "patch", "delete"}
    assert "post" in paths["/api/serving/deployments/{name}/rollback"]
    invocations = paths["/serve/{name}/invocations"]["post"]
    assert set(invocations["requestBody"]["content"]) == {"application/json", "text/csv"}
    assert json.dumps(invocations).count("dataframe_split") >= 1


@pytest.mark.slow
def test_a_model_server_that_dies_is_started_again_and_audited(
    project: Path, register: Register, alice: TestClient, deployer: Worker, client: TestClient,
    settings: Settings,
) -> None:  # fmt: skip
    version = register()
    deploy(alice, version)
    run_tasks(deployer)
    server = servers_for(settings).server(STAGING, version)
    assert server is not None
    os.killpg(server.process.pid, signal.SIGKILL)
    server.process.wait()
    down = predict(alice, STAGING)
    assert down.status_code == 503
    assert f"the model server of {STAGING} v{version}" in down.json()["detail"]
    deadline = time.monotonic() + 10  # the portal's loop notices within a second
    while not run_tasks(deployer):
        assert time.monotonic() < deadline, "no task started the server again"
        time.sleep(0.2)
    assert predict(alice, STAGING).status_code == 200
    after = alice.get(f"{DEPLOYMENTS}/{STAGING}").json()
    assert after["status"] == "serving"
    assert [event["kind"] for event in after["events"][:2]] == ["restore", "crashed"]
    assert after["events"][1]["message"] == (
        f"the model server of v{version} stopped answering; starting it again"
    )
    # Paved audits what it does by itself: deciding to start it again, then its servers up.
    noticed, started = reversed(audit_actions(client, "serving.deployment.restore"))
    assert (noticed["actor"], noticed["outcome"]) == (service.RESTORER, "succeeded")
    assert noticed["reasons"] == [f"the model server of v{version} stopped answering"]
    assert (started["actor"], started["outcome"]) == (service.RESTORER, "succeeded")
    assert set(started["detail"]["endpoints"]) == {version}

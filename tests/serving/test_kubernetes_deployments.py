"""Deployments through the API on the Kubernetes runtime: the ``serving.apply`` task sends a
KServe InferenceService, or a version's Deployment, Service and autoscaler, to the API
server; canaries, promotions and rollbacks follow; an API error leaves the version that
served before serving.

No cluster runs on this machine: the API server is a fake, kmock's ``KubernetesEmulator``
(``tests/kubernetes_api.py``), which stores what it is sent and runs no controllers, so no
pod ever starts. What is checked is what the portal asked of the API server and what it
recorded. Nor is there S3: MLflow keeps the models' files in a bucket of moto's in-process
stand-in for S3, as a team's MLflow would keep them in its object store, so that pods (and
KServe's storage initializer) could read them where MLflow put them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import kmock
import pytest
from fastapi.testclient import TestClient
from kubernetes_api import FakeApiServer
from moto import mock_aws
from serving.conftest import MODEL, Register, run_tasks

from portal.settings import Settings
from portal.tracking import tracking_client
from portal.worker import Worker

from conftest import ALICE

DEPLOYMENTS = "/api/serving/deployments"
PRODUCTION = "churn-production"
NAMESPACE = "team-fraud"  # the settings' default, team-{team}, for group:default/fraud
KUBE_DEPLOYMENTS = kmock.resource("apps", "v1", "deployments")
SERVICES = kmock.resource("", "v1", "services")
HPAS = kmock.resource("autoscaling", "v2", "horizontalpodautoscalers")
ISVCS = kmock.resource("serving.kserve.io", "v1beta1", "inferenceservices")


BUCKET = "ml-artifacts"


@pytest.fixture
def serving_mode() -> str:
    return "deployment"


@pytest.fixture
def settings(settings: Settings, api_server: FakeApiServer, serving_mode: str) -> Settings:
    kubernetes = settings.kubernetes.model_copy(
        update={
            "api_url": api_server.url,
            "image": "registry.example.com/ml-runtime:1.4",
            "serving_mode": serving_mode,
        }
    )
    return settings.model_copy(update={"kubernetes": kubernetes})


@pytest.fixture(autouse=True)
def artifacts_in_s3(
    settings: Settings, mlflow_store: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[str]:
    """The churn experiment keeps its artifacts in an S3 bucket (moto's stand-in)."""
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(name, "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    with mock_aws():
        import boto3

        boto3.client("s3").create_bucket(Bucket=BUCKET)
        location = f"s3://{BUCKET}/{MODEL}"
        tracking_client(settings).create_experiment(MODEL, artifact_location=location)
        yield location


@pytest.fixture
def on_kubernetes(project: Path) -> Path:
    """The churn project, served on Kubernetes with two to four replicas of half a CPU."""
    settings_file = project / "paved-project.yaml"
    settings_file.write_text(
        settings_file.read_text().replace(
            "  runtime: local\n",
            "  runtime: kubernetes\n"
            "  replicas: {min: 2, max: 4}\n"
            "  resources: {cpu: 500m, memory: 1Gi}\n",
        )
    )
    return project


def deploy(client: TestClient, version: str) -> Any:
    return client.post(
        DEPLOYMENTS, json={"model": MODEL, "version": version, "environment": "production"}
    )


def stored(api_server: FakeApiServer, resource: kmock.resource, name: str) -> dict[str, Any]:
    return dict(api_server.emulator.objects[resource, NAMESPACE, name].raw)


def source_of(settings: Settings, version: str) -> str:
    """Where MLflow keeps the version's files."""
    return str(tracking_client(settings).get_model_version_download_uri(MODEL, version))


def test_a_production_deploy_creates_the_versions_deployment_service_and_autoscaler(
    on_kubernetes: Path, register: Register, approve: Callable[[str], None], alice: TestClient,
    deployer: Worker, api_server: FakeApiServer, settings: Settings,
) -> None:  # fmt: skip
    version = register()
    approve(version)

    started = deploy(alice, version)

    assert started.status_code == 202, started.text
    assert started.json()["runtime"] == "kubernetes"
    assert not api_server.requests(kmock.action.CREATE)  # the task sends them, not the request
    assert run_tasks(deployer) == 1
    serving = alice.get(f"{DEPLOYMENTS}/{PRODUCTION}").json()
    assert serving["status"] == "serving", serving
    assert serving["stable_version"] == version
    assert serving["message"] == f"v{version} takes all traffic"
    objects = f"{PRODUCTION}-v{version}"
    assert serving["endpoints"] == {version: f"http://{objects}.{NAMESPACE}.svc.cluster.local"}
    for resource in (KUBE_DEPLOYMENTS, SERVICES, HPAS):
        assert api_server.names(resource) == {(NAMESPACE, objects)}
    assert not api_server.names(ISVCS)
    deployment = stored(api_server, KUBE_DEPLOYMENTS, objects)
    assert (
        deployment["metadata"]["labels"].items()
        >= {
            "app.kubernetes.io/managed-by": "paved",
            "paved.dev/deployment": PRODUCTION,
            "paved.dev/team": "fraud",
            "paved.dev/environment": "production",
            "paved.dev/model": MODEL,
            "paved.dev/version": version,
        }.items()
    )
    [server] = deployment["spec"]["template"]["spec"]["containers"]
    assert server["image"] == "registry.example.com/ml-runtime:1.4"
    # The pod reads the files where MLflow keeps them: the portal's MLflow is its own.
    source = source_of(settings, version)
    assert source.startswith(f"s3://{BUCKET}/{MODEL}/")
    assert server["command"][:5] == ["mlflow", "models", "serve", "-m", source]
    assert "MLFLOW_TRACKING_URI" not in {item["name"] for item in server["env"]}
    # The project's serving section reaches the cluster.
    assert server["resources"]["limits"] == {"cpu": "500m", "memory": "1Gi"}
    hpa = stored(api_server, HPAS, objects)
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (2, 4)
    assert hpa["spec"]["scaleTargetRef"]["name"] == objects
    assert stored(api_server, SERVICES, objects)["spec"]["selector"] == {
        "paved.dev/deployment": PRODUCTION,
        "paved.dev/version": version,
    }


def test_an_api_error_leaves_the_previous_version_serving_and_is_audited(
    on_kubernetes: Path, register: Register, approve: Callable[[str], None], alice: TestClient,
    deployer: Worker, api_server: FakeApiServer, client: TestClient,
) -> None:  # fmt: skip
    stable = register()
    approve(stable)
    deploy(alice, stable)
    run_tasks(deployer)
    serving_objects = f"{PRODUCTION}-v{stable}"
    before = {
        resource: stored(api_server, resource, serving_objects)
        for resource in (KUBE_DEPLOYMENTS, SERVICES, HPAS)
    }
    already = len(api_server.requests())
    refused = register()
    approve(refused)
    message = (
        'deployments.apps is forbidden: User "system:serviceaccount:paved:portal" cannot '
        'create resource "deployments" in API group "apps" in the namespace "team-fraud"'
    )
    (
        api_server.emulator[kmock.action.CREATE, KUBE_DEPLOYMENTS]
        << 403
        << {
            "kind": "Status",
            "status": "Failure",
            "reason": "Forbidden",
            "code": 403,
            "message": message,
        }
    )

    assert deploy(alice, refused).status_code == 202
    run_tasks(deployer)

    error = (
        f"cannot create Deployment {NAMESPACE}/{PRODUCTION}-v{refused}: 403 Forbidden: {message}"
    )
    after = alice.get(f"{DEPLOYMENTS}/{PRODUCTION}").json()
    assert after["status"] == "serving"
    assert after["stable_version"] == stable
    assert after["pending"] is None
    assert after["message"] == f"v{refused} did not come up: {error}; v{stable} still serves"
    assert list(after["endpoints"]) == [stable]
    assert (after["events"][0]["kind"], after["events"][0]["actor"]) == ("failed", ALICE)
    task = client.get(f"/api/tasks/{after['task_id']}").json()
    assert (task["status"], task["error"]) == ("failed", error)
    # The refused create was the last request: nothing more of the new version, and nothing
    # of the serving one deleted or changed. (kmock stores what a create names even when a
    # reaction answers it with an error, so its store would show the refused Deployment.)
    [sent] = api_server.requests()[already:]
    assert (sent.action, sent.resource) == (kmock.action.CREATE, KUBE_DEPLOYMENTS)
    assert sent.data["metadata"]["name"] == f"{PRODUCTION}-v{refused}"
    for resource, obj in before.items():
        assert stored(api_server, resource, serving_objects) == obj
    created = client.get("/api/audit/events?action=serving.deployment.create").json()["events"]
    failed = created[0]
    assert (failed["actor"], failed["outcome"]) == (ALICE, "failed")
    assert failed["resource"] == f"deployment:{PRODUCTION}"
    assert failed["detail"]["error"] == error


def test_a_promotion_keeps_the_replaced_version_for_a_rollback_in_seconds(
    on_kubernetes: Path, register: Register, approve: Callable[[str], None], alice: TestClient,
    deployer: Worker, api_server: FakeApiServer,
) -> None:  # fmt: skip
    first, second = register(), register()
    approve(first)
    approve(second)
    deploy(alice, first)
    run_tasks(deployer)

    deploy(alice, second)
    run_tasks(deployer)

    promoted = alice.get(f"{DEPLOYMENTS}/{PRODUCTION}").json()
    assert (promoted["stable_version"], promoted["message"]) == (
        second,
        f"v{second} takes all traffic",
    )
    assert set(promoted["endpoints"]) == {first, second}  # the first one, without traffic
    both = {(NAMESPACE, f"{PRODUCTION}-v{first}"), (NAMESPACE, f"{PRODUCTION}-v{second}")}
    for resource in (KUBE_DEPLOYMENTS, SERVICES, HPAS):
        assert api_server.names(resource) == both

    rolled = alice.post(f"{DEPLOYMENTS}/{PRODUCTION}/rollback")

    assert rolled.status_code == 200, rolled.text
    assert rolled.json()["stable_version"] == first  # at once: the router switched
    assert rolled.json()["message"] == f"v{second} rolled back to v{first}"
    run_tasks(deployer)  # settles: what no longer takes traffic goes
    for resource in (KUBE_DEPLOYMENTS, SERVICES, HPAS):
        assert api_server.names(resource) == {(NAMESPACE, f"{PRODUCTION}-v{first}")}
    assert list(alice.get(f"{DEPLOYMENTS}/{PRODUCTION}").json()["endpoints"]) == [first]


@pytest.mark.parametrize("serving_mode", ["kserve"])
def test_kserve_serves_a_canary_then_the_promoted_version_then_rolls_back(
    on_kubernetes: Path, register: Register, approve: Callable[[str], None], alice: TestClient,
    deployer: Worker, api_server: FakeApiServer, settings: Settings,
) -> None:  # fmt: skip
    stable, canary = register(), register()
    approve(stable)
    approve(canary)
    url = f"http://{PRODUCTION}.{NAMESPACE}.svc.cluster.local"

    def predictor() -> dict[str, Any]:
        return dict(stored(api_server, ISVCS, PRODUCTION)["spec"]["predictor"])

    deploy(alice, stable)
    assert run_tasks(deployer) == 1
    serving = alice.get(f"{DEPLOYMENTS}/{PRODUCTION}").json()
    assert (serving["status"], serving["endpoints"]) == ("serving", {"*": url})
    assert predictor()["model"]["storageUri"] == source_of(settings, stable)
    assert "canaryTrafficPercent" not in predictor()
    assert predictor()["minReplicas"] == 2
    assert not api_server.names(KUBE_DEPLOYMENTS)

    with_canary = alice.post(
        DEPLOYMENTS,
        json={"model": MODEL, "version": canary, "environment": "production", "canary_percent": 10},
    )
    assert with_canary.status_code == 202, with_canary.text
    run_tasks(deployer)
    # KServe splits: the latest revision (the canary) takes 10 %, the last full one the rest.
    assert predictor()["model"]["storageUri"] == source_of(settings, canary)
    assert predictor()["canaryTrafficPercent"] == 10
    assert alice.get(f"{DEPLOYMENTS}/{PRODUCTION}").json()["canary_version"] == canary

    assert (
        alice.patch(f"{DEPLOYMENTS}/{PRODUCTION}", json={"canary_percent": 40}).status_code == 200
    )
    run_tasks(deployer)
    assert predictor()["canaryTrafficPercent"] == 40

    assert alice.patch(f"{DEPLOYMENTS}/{PRODUCTION}", json={"promote": True}).status_code == 200
    run_tasks(deployer)
    assert "canaryTrafficPercent" not in predictor()
    assert predictor()["model"]["storageUri"] == source_of(settings, canary)
    annotations = stored(api_server, ISVCS, PRODUCTION)["metadata"]["annotations"]
    assert annotations["paved.dev/stable-version"] == canary

    rolled = alice.post(f"{DEPLOYMENTS}/{PRODUCTION}/rollback")
    assert rolled.status_code == 200, rolled.text
    assert rolled.json()["message"] == f"v{canary} rolled back to v{stable}"
    run_tasks(deployer)
    assert predictor()["model"]["storageUri"] == source_of(settings, stable)
    annotations = stored(api_server, ISVCS, PRODUCTION)["metadata"]["annotations"]
    assert annotations["paved.dev/stable-version"] == stable
    assert api_server.names(ISVCS) == {(NAMESPACE, PRODUCTION)}


@pytest.mark.parametrize("serving_mode", ["kserve"])
def test_kserve_refuses_a_model_kept_on_the_portals_machine(
    on_kubernetes: Path, register: Register, approve: Callable[[str], None], alice: TestClient,
    deployer: Worker, api_server: FakeApiServer, settings: Settings,
) -> None:  # fmt: skip
    tracking_client(settings).rename_experiment(
        tracking_client(settings).get_experiment_by_name(MODEL).experiment_id, "churn-in-s3"
    )  # the next run makes a churn experiment of the embedded store, on this machine
    version = register()
    approve(version)

    assert deploy(alice, version).status_code == 202
    run_tasks(deployer)

    failed = alice.get(f"{DEPLOYMENTS}/{PRODUCTION}").json()
    assert failed["status"] == "failed"
    source = source_of(settings, version)
    assert source.startswith("file://")
    assert failed["message"] == (
        f"v{version} did not come up: model {MODEL} version {version} is at {source!r}, on the "
        "portal's machine, which the cluster cannot read; expected artifacts in a remote store "
        "(s3://, gs://, wasbs://, https://), i.e. an MLflow tracking server whose artifact "
        "root is one (mlflow.tracking_uri)"
    )
    assert not api_server.requests()

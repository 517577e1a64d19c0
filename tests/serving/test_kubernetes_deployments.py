"""Deployments through the API on the Kubernetes runtime: the ``serving.apply`` task sends a
version's Deployment, Service and autoscaler to the API server, and an API error leaves the
version that served before serving.

No cluster runs on this machine: the API server is a fake, kmock's ``KubernetesEmulator``
(``tests/kubernetes_api.py``), which stores what it is sent and runs no controllers, so no
pod ever starts. What is checked is what the portal asked of the API server and what it
recorded. The runtime runs in deployment mode: the task names a version by its registry URI
(``models:/churn/1``), which MLflow's own model server reads and KServe's storage
initializer does not.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import kmock
import pytest
from fastapi.testclient import TestClient
from kubernetes_api import FakeApiServer
from serving.conftest import MODEL, Register, run_tasks

from portal.settings import Settings
from portal.worker import Worker

from conftest import ALICE

DEPLOYMENTS = "/api/serving/deployments"
PRODUCTION = "churn-production"
NAMESPACE = "team-fraud"  # the settings' default, team-{team}, for group:default/fraud
KUBE_DEPLOYMENTS = kmock.resource("apps", "v1", "deployments")
SERVICES = kmock.resource("", "v1", "services")
HPAS = kmock.resource("autoscaling", "v2", "horizontalpodautoscalers")
ISVCS = kmock.resource("serving.kserve.io", "v1beta1", "inferenceservices")


@pytest.fixture
def settings(settings: Settings, api_server: FakeApiServer) -> Settings:
    kubernetes = settings.kubernetes.model_copy(
        update={
            "api_url": api_server.url,
            "image": "registry.example.com/ml-runtime:1.4",
            "serving_mode": "deployment",
        }
    )
    return settings.model_copy(update={"kubernetes": kubernetes})


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


def test_a_production_deploy_creates_the_versions_deployment_service_and_autoscaler(
    on_kubernetes: Path, register: Register, approve: Callable[[str], None], alice: TestClient,
    deployer: Worker, api_server: FakeApiServer,
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
    registry_uri = f"models:/{MODEL}/{version}"
    assert server["command"][:5] == ["mlflow", "models", "serve", "-m", registry_uri]
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

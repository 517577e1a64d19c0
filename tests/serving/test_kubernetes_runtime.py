"""The Kubernetes serving runtime: its manifests (KServe, or Deployments), applied and removed.

No cluster runs on this machine, so the Kubernetes API here is a fake: kmock's
``KubernetesEmulator``, an in-memory API server on a loopback port that stores what is
created, patched (merged, with null removing a key, as a JSON merge patch does) and
deleted. It runs no controllers (KServe's included) and ignores label selectors, so the
runtime's own check of labels before deleting is what keeps other deployments' objects.
kmock's pytest plugin needs pytest-asyncio, which Paved does not use: the emulator runs in
a thread with its own event loop instead (``FakeApiServer``).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import kmock
import pytest
from kubernetes_api import FakeApiServer

from plugins.serving import kubernetes as runtime
from plugins.serving.runtimes import DeploymentState, RuntimeFailed, VersionSpec
from portal.settings import Settings, load_settings

ISVCS = kmock.resource("serving.kserve.io", "v1beta1", "inferenceservices")
DEPLOYMENTS = kmock.resource("apps", "v1", "deployments")
SERVICES = kmock.resource("", "v1", "services")
HPAS = kmock.resource("autoscaling", "v2", "horizontalpodautoscalers")
NAMESPACE = "team-fraud"
STABLE = VersionSpec(
    model="fraud-detector",
    version="3",
    model_uri="models:/fraud-detector/3",
    source="s3://models/fraud-detector/3",
    resources={"cpu": "500m", "memory": "1Gi"},
    replicas={"min": 2, "max": 5},
)
CANARY = VersionSpec(
    model="fraud-detector",
    version="4",
    model_uri="models:/fraud-detector/4",
    source="s3://models/fraud-detector/4",
    replicas={"min": 1, "max": 2},
)


@pytest.fixture(scope="module", autouse=True)
def _client_imported() -> None:
    """The client's API classes take about 2 s to load, once per process: paid here rather
    than by whichever test first applies a deployment."""
    from kubernetes import client

    client.AppsV1Api, client.CoreV1Api, client.AutoscalingV2Api, client.CustomObjectsApi  # noqa: B018


def settings_for(
    tmp_path: Path, url: str, mode: str = "kserve", tracking_uri: str | None = None
) -> Settings:
    return load_settings(
        data_dir=tmp_path,
        kubernetes={
            "api_url": url,
            "image": "registry.example.com/ml-runtime:1.4",
            "serving_mode": mode,
        },
        mlflow={"tracking_uri": tracking_uri},
    )


@pytest.fixture
def kserve(tmp_path: Path, api_server: FakeApiServer) -> Settings:
    return settings_for(tmp_path, api_server.url)


@pytest.fixture
def deployments(tmp_path: Path, api_server: FakeApiServer) -> Settings:
    return settings_for(tmp_path, api_server.url, "deployment")


def make_state(**changes: Any) -> DeploymentState:
    fields: dict[str, Any] = {
        "name": "fraud-detector-production",
        "environment": "production",
        "owner": "group:default/fraud",
        "stable": STABLE,
    }
    return DeploymentState(**(fields | changes))


def with_canary(percent: int = 10) -> DeploymentState:
    return make_state(canary=CANARY, canary_percent=percent)


# -- KServe --------------------------------------------------------------------------------


def test_inference_service_serves_the_stable_model(kserve: Settings) -> None:
    isvc = runtime.inference_service(make_state(), kserve)

    assert isvc["apiVersion"] == "serving.kserve.io/v1beta1"
    assert isvc["kind"] == "InferenceService"
    assert isvc["metadata"]["name"] == "fraud-detector-production"
    assert isvc["metadata"]["namespace"] == NAMESPACE
    assert (
        isvc["metadata"]["labels"].items()
        >= {
            "app.kubernetes.io/managed-by": "paved",
            "paved.dev/deployment": "fraud-detector-production",
            "paved.dev/team": "fraud",
            "paved.dev/version": "3",
        }.items()
    )
    assert isvc["spec"] == {
        "predictor": {
            "minReplicas": 2,
            "maxReplicas": 5,
            "model": {
                "modelFormat": {"name": "mlflow"},
                "protocolVersion": "v2",
                "storageUri": "s3://models/fraud-detector/3",
                "resources": {
                    "requests": {"cpu": "500m", "memory": "1Gi"},
                    "limits": {"cpu": "500m", "memory": "1Gi"},
                },
            },
        }
    }


def test_inference_service_sends_the_canary_its_share_of_traffic(kserve: Settings) -> None:
    isvc = runtime.inference_service(with_canary(10), kserve)

    predictor = isvc["spec"]["predictor"]
    # The latest revision is the canary's; KServe keeps the other 90 % on the stable one.
    assert predictor["canaryTrafficPercent"] == 10
    assert predictor["model"]["storageUri"] == "s3://models/fraud-detector/4"
    assert (predictor["minReplicas"], predictor["maxReplicas"]) == (1, 2)
    assert isvc["metadata"]["annotations"] == {
        "paved.dev/stable-version": "3",
        "paved.dev/stable-model-uri": "s3://models/fraud-detector/3",
        "paved.dev/canary-version": "4",
    }


def test_apply_creates_the_inference_service_and_splits_traffic_itself(
    api_server: FakeApiServer, kserve: Settings
) -> None:
    lines: list[str] = []
    state = with_canary(25)

    urls = runtime.kubernetes_runtime(kserve).apply(state, kserve, lines.append)

    assert runtime.kubernetes_runtime(kserve).splits_traffic
    assert urls == {"*": "http://fraud-detector-production.team-fraud.svc.cluster.local"}
    stored = api_server.emulator.objects[ISVCS, NAMESPACE, "fraud-detector-production"]
    assert stored == runtime.inference_service(state, kserve)
    assert lines == ["created InferenceService team-fraud/fraud-detector-production"]


def test_applying_twice_updates_the_inference_service_in_place(
    api_server: FakeApiServer, kserve: Settings
) -> None:
    lines: list[str] = []
    runtime.KUBERNETES.apply(with_canary(10), kserve, lines.append)

    runtime.KUBERNETES.apply(with_canary(10), kserve, lines.append)

    assert len(api_server.requests(kmock.action.CREATE, ISVCS)) == 2  # the second one: 409
    [patch] = api_server.requests(kmock.action.UPDATE, ISVCS)
    assert patch.headers["Content-Type"] == "application/merge-patch+json"
    assert api_server.names(ISVCS) == {(NAMESPACE, "fraud-detector-production")}
    stored = api_server.emulator.objects[ISVCS, NAMESPACE, "fraud-detector-production"]
    assert stored == runtime.inference_service(with_canary(10), kserve)
    assert lines[-1] == "updated InferenceService team-fraud/fraud-detector-production"


def test_promoting_the_canary_removes_its_traffic_percent(
    api_server: FakeApiServer, kserve: Settings
) -> None:
    runtime.KUBERNETES.apply(with_canary(50), kserve, lambda line: None)

    promoted = make_state(stable=CANARY)
    runtime.KUBERNETES.apply(promoted, kserve, lambda line: None)

    predictor = api_server.emulator.objects[ISVCS, NAMESPACE, "fraud-detector-production"]["spec"][
        "predictor"
    ]
    assert "canaryTrafficPercent" not in predictor
    assert predictor["model"]["storageUri"] == "s3://models/fraud-detector/4"


def test_a_forbidden_apply_fails_naming_the_object_and_the_api_message(
    api_server: FakeApiServer, kserve: Settings
) -> None:
    message = (
        'inferenceservices.serving.kserve.io is forbidden: User "system:serviceaccount:'
        'paved:portal" cannot create resource "inferenceservices" in the namespace "team-fraud"'
    )
    (
        api_server.emulator[kmock.action.CREATE, ISVCS]
        << 403
        << {
            "kind": "Status",
            "status": "Failure",
            "reason": "Forbidden",
            "code": 403,
            "message": message,
        }
    )

    with pytest.raises(RuntimeFailed) as failed:
        runtime.KUBERNETES.apply(make_state(), kserve, lambda line: None)

    assert str(failed.value) == (
        "cannot create InferenceService team-fraud/fraud-detector-production: "
        f"403 Forbidden: {message}"
    )


def test_kserve_cannot_read_artifacts_kept_behind_the_mlflow_server(kserve: Settings) -> None:
    proxied = replace(STABLE, source="mlflow-artifacts:/1/models/m-abc/artifacts")

    with pytest.raises(RuntimeFailed) as refused:
        runtime.KUBERNETES.apply(make_state(stable=proxied), kserve, lambda line: None)

    assert str(refused.value).startswith(
        "model fraud-detector version 3 is at 'mlflow-artifacts:/1/models/m-abc/artifacts', "
        "which KServe's storage initializer cannot read; expected a storage URI (s3://"
    )


def test_kserve_cannot_read_the_portals_own_files(
    api_server: FakeApiServer, kserve: Settings
) -> None:
    embedded = replace(STABLE, source="file:///srv/paved/mlflow/artifacts/1/abc")

    with pytest.raises(RuntimeFailed, match="on the portal's machine, which the cluster cannot"):
        runtime.KUBERNETES.apply(make_state(stable=embedded), kserve, lambda line: None)

    assert not api_server.requests()  # refused before anything was sent


# -- Deployments ---------------------------------------------------------------------------


def test_each_version_gets_a_deployment_a_service_and_an_autoscaler(
    deployments: Settings,
) -> None:
    manifests = runtime.deployment_manifests(with_canary(), deployments)

    assert [(m["kind"], m["metadata"]["name"]) for m in manifests] == [
        ("Deployment", "fraud-detector-production-v3"),
        ("Service", "fraud-detector-production-v3"),
        ("HorizontalPodAutoscaler", "fraud-detector-production-v3"),
        ("Deployment", "fraud-detector-production-v4"),
        ("Service", "fraud-detector-production-v4"),
        ("HorizontalPodAutoscaler", "fraud-detector-production-v4"),
    ]
    deployment, service, hpa = manifests[:3]
    for manifest in manifests[:3]:
        assert manifest["metadata"]["namespace"] == NAMESPACE
        assert (
            manifest["metadata"]["labels"].items()
            >= {
                "app.kubernetes.io/managed-by": "paved",
                "paved.dev/deployment": "fraud-detector-production",
                "paved.dev/team": "fraud",
                "paved.dev/version": "3",
            }.items()
        )
    selector = {"paved.dev/deployment": "fraud-detector-production", "paved.dev/version": "3"}
    assert deployment["spec"]["selector"] == {"matchLabels": selector}
    assert "replicas" not in deployment["spec"]  # the autoscaler's to set
    [server] = deployment["spec"]["template"]["spec"]["containers"]
    assert server["image"] == "registry.example.com/ml-runtime:1.4"
    assert server["command"] == [
        *("mlflow", "models", "serve", "-m", "s3://models/fraud-detector/3"),
        *("--env-manager", "local", "-h", "0.0.0.0", "-p", "8080"),
    ]
    assert server["readinessProbe"]["httpGet"] == {"path": "/ping", "port": "http"}
    assert server["livenessProbe"]["httpGet"] == {"path": "/ping", "port": "http"}
    assert server["resources"]["limits"] == {"cpu": "500m", "memory": "1Gi"}
    assert service["spec"]["selector"] == selector
    assert service["spec"]["ports"] == [{"name": "http", "port": 80, "targetPort": "http"}]
    assert hpa["apiVersion"] == "autoscaling/v2"
    assert hpa["spec"]["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": "fraud-detector-production-v3",
    }
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (2, 5)
    assert hpa["spec"]["metrics"][0]["resource"] == {
        "name": "cpu",
        "target": {"type": "Utilization", "averageUtilization": 70},
    }


def test_apply_in_deployment_mode_returns_each_version_url(
    api_server: FakeApiServer, deployments: Settings
) -> None:
    chosen = runtime.kubernetes_runtime(deployments)

    urls = chosen.apply(with_canary(), deployments, lambda line: None)

    assert not chosen.splits_traffic
    assert urls == {
        "3": "http://fraud-detector-production-v3.team-fraud.svc.cluster.local",
        "4": "http://fraud-detector-production-v4.team-fraud.svc.cluster.local",
    }
    both = {
        (NAMESPACE, "fraud-detector-production-v3"),
        (NAMESPACE, "fraud-detector-production-v4"),
    }
    for resource in (DEPLOYMENTS, SERVICES, HPAS):
        assert api_server.names(resource) == both
    assert not api_server.names(ISVCS)


def test_applying_twice_in_deployment_mode_patches_every_object(
    api_server: FakeApiServer, deployments: Settings
) -> None:
    lines: list[str] = []
    runtime.KUBERNETES_DEPLOYMENTS.apply(make_state(), deployments, lines.append)
    first = {
        key: dict(obj.raw) for key, obj in api_server.emulator.objects.items() if not obj.deleted
    }

    runtime.KUBERNETES_DEPLOYMENTS.apply(make_state(), deployments, lines.append)

    again = {
        key: dict(obj.raw) for key, obj in api_server.emulator.objects.items() if not obj.deleted
    }
    assert again == first
    assert len(api_server.requests(kmock.action.UPDATE)) == 3
    assert not api_server.requests(kmock.action.DELETE)
    assert lines[3:] == [
        "updated Deployment team-fraud/fraud-detector-production-v3",
        "updated Service team-fraud/fraud-detector-production-v3",
        "updated HorizontalPodAutoscaler team-fraud/fraud-detector-production-v3",
    ]


def test_removing_the_canary_deletes_its_objects(
    api_server: FakeApiServer, deployments: Settings
) -> None:
    runtime.KUBERNETES_DEPLOYMENTS.apply(with_canary(), deployments, lambda line: None)
    lines: list[str] = []

    urls = runtime.KUBERNETES_DEPLOYMENTS.apply(make_state(), deployments, lines.append)

    assert list(urls) == ["3"]
    for resource in (DEPLOYMENTS, SERVICES, HPAS):
        assert api_server.names(resource) == {(NAMESPACE, "fraud-detector-production-v3")}
    assert lines[-3:] == [
        "deleted HorizontalPodAutoscaler team-fraud/fraud-detector-production-v4",
        "deleted Service team-fraud/fraud-detector-production-v4",
        "deleted Deployment team-fraud/fraud-detector-production-v4",
    ]


def test_remove_deletes_only_the_deployments_objects(
    api_server: FakeApiServer, deployments: Settings, kserve: Settings
) -> None:
    runtime.KUBERNETES_DEPLOYMENTS.apply(with_canary(), deployments, lambda line: None)
    runtime.KUBERNETES.apply(make_state(), kserve, lambda line: None)  # left from kserve mode
    other = make_state(name="churn-staging", owner="group:default/churn", environment="staging")
    runtime.KUBERNETES_DEPLOYMENTS.apply(other, deployments, lambda line: None)

    runtime.KUBERNETES_DEPLOYMENTS.remove(
        "fraud-detector-production", deployments, lambda line: None
    )

    for resource in (DEPLOYMENTS, SERVICES, HPAS):
        assert api_server.names(resource) == {("team-churn", "churn-staging-v3")}
    assert not api_server.names(ISVCS)


def test_a_runtime_of_the_other_mode_refuses_to_apply(deployments: Settings) -> None:
    with pytest.raises(RuntimeFailed, match="expected the runtime from kubernetes_runtime"):
        runtime.KUBERNETES.apply(make_state(), deployments, lambda line: None)


def test_a_model_on_the_portal_machine_is_refused(deployments: Settings) -> None:
    local = replace(STABLE, source="/srv/paved/mlflow/artifacts/1/abc/model")

    with pytest.raises(RuntimeFailed) as refused:
        runtime.KUBERNETES_DEPLOYMENTS.apply(
            make_state(stable=local), deployments, lambda line: None
        )

    assert str(refused.value) == (
        "model fraud-detector version 3 is at '/srv/paved/mlflow/artifacts/1/abc/model', on "
        "the portal's machine, and the cluster cannot reach its MLflow (the embedded store); "
        "expected artifacts in a remote store (s3://, gs://, wasbs://, https://) or an MLflow "
        "tracking server the cluster can reach (mlflow.tracking_uri)"
    )


def test_a_tracking_server_the_cluster_reaches_resolves_the_registry_uri(
    tmp_path: Path, api_server: FakeApiServer
) -> None:
    settings = settings_for(
        tmp_path, api_server.url, "deployment", tracking_uri="http://mlflow.ml-platform:5000"
    )
    proxied = replace(STABLE, source="mlflow-artifacts:/1/models/m-abc/artifacts")

    [deployment, *_] = runtime.deployment_manifests(make_state(stable=proxied), settings)

    [server] = deployment["spec"]["template"]["spec"]["containers"]
    assert server["command"][3:5] == ["-m", "models:/fraud-detector/3"]
    env = {item["name"]: item["value"] for item in server["env"]}
    assert env["MLFLOW_TRACKING_URI"] == "http://mlflow.ml-platform:5000"


@pytest.mark.parametrize(
    "tracking_uri",
    ["http://127.0.0.1:5000", "http://localhost:5000", "sqlite:////srv/paved/mlflow.db"],
)
def test_a_tracking_uri_only_the_portal_reaches_is_refused(
    tmp_path: Path, api_server: FakeApiServer, tracking_uri: str
) -> None:
    settings = settings_for(tmp_path, api_server.url, "deployment", tracking_uri=tracking_uri)
    proxied = replace(STABLE, source="mlflow-artifacts:/1/models/m-abc/artifacts")

    with pytest.raises(
        RuntimeFailed, match=f"the cluster cannot reach its MLflow \\({tracking_uri}"
    ):
        runtime.KUBERNETES_DEPLOYMENTS.apply(
            make_state(stable=proxied), settings, lambda line: None
        )


def test_a_promotion_keeps_the_replaced_version_running_for_a_rollback(
    api_server: FakeApiServer, deployments: Settings
) -> None:
    runtime.KUBERNETES_DEPLOYMENTS.apply(with_canary(), deployments, lambda line: None)

    promoted = make_state(stable=CANARY, previous=STABLE)
    urls = runtime.KUBERNETES_DEPLOYMENTS.apply(promoted, deployments, lambda line: None)

    assert list(urls) == ["4", "3"]
    both = {
        (NAMESPACE, "fraud-detector-production-v3"),
        (NAMESPACE, "fraud-detector-production-v4"),
    }
    for resource in (DEPLOYMENTS, SERVICES, HPAS):
        assert api_server.names(resource) == both
    # Rolled back: v3 stable again, nothing kept; v4's objects go.
    runtime.KUBERNETES_DEPLOYMENTS.apply(make_state(), deployments, lambda line: None)
    for resource in (DEPLOYMENTS, SERVICES, HPAS):
        assert api_server.names(resource) == {(NAMESPACE, "fraud-detector-production-v3")}

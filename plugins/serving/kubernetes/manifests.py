"""The Kubernetes serving runtime's manifests, built without a cluster: a KServe
InferenceService per deployment, or a Deployment, Service and HorizontalPodAutoscaler per
version; and where the cluster reads each version's model from.

A pod reads a model one of two ways. From where MLflow keeps its files (``VersionSpec.
source``) when that is a store the cluster can reach (``s3://``, ``gs://``, ``https://``...):
KServe's storage initializer can only do this. Or, MLflow's own model server only, by the
registry's URI (``models:/churn/3``), resolved by a tracking server the cluster can reach
(``mlflow.tracking_uri``), which also serves artifacts kept behind it (``mlflow-artifacts:``).
Files on the portal's machine (the embedded store) and loopback addresses are neither.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

from plugins.serving.runtimes import DeploymentState, RuntimeFailed, VersionSpec
from portal import Settings
from portal.kubernetes import MANAGED_BY, namespace_for, sanitize_label_value, sanitize_name

KSERVE_GROUP = "serving.kserve.io"
KSERVE_VERSION = "v1beta1"
KSERVE_PLURAL = "inferenceservices"
# KServe and Knative add suffixes (``-predictor``, ``-00001``) to the name for the objects
# they make, which must stay within 63 characters.
INFERENCE_SERVICE_MAX_LENGTH = 45
PORT = 8080
CPU_TARGET_PERCENT = 70
DEFAULT_RESOURCES = {"cpu": "1", "memory": "2Gi"}
# Where a pod cannot read a model from: the portal's own files and database.
LOCAL_URI = re.compile(r"^(file:|sqlite:|/|\.)")
# MLflow's own URI schemes: only an MLflow server resolves them.
MLFLOW_URI = re.compile(r"^(models|runs|mlflow-artifacts):")
REMOTE_STORES = "s3://, gs://, wasbs://, https://"


def deployment_labels(state: DeploymentState, version: VersionSpec) -> dict[str, str]:
    """Who an object is for: the deployment, its team and environment, the model version."""
    given = {key: sanitize_label_value(value) for key, value in state.labels.items()}
    return given | {
        **MANAGED_BY,
        "app.kubernetes.io/component": "serving",
        "paved.dev/deployment": sanitize_label_value(state.name),
        "paved.dev/team": sanitize_label_value(state.team),
        "paved.dev/environment": sanitize_label_value(state.environment),
        "paved.dev/model": sanitize_label_value(version.model),
        "paved.dev/version": sanitize_label_value(version.version),
    }


def inference_service_name(state: DeploymentState) -> str:
    return sanitize_name(state.name, max_length=INFERENCE_SERVICE_MAX_LENGTH)


def inference_service(state: DeploymentState, settings: Settings) -> dict[str, Any]:
    """The KServe InferenceService (serving.kserve.io/v1beta1) serving ``state``.

    KServe's canary rollout: the predictor always describes the latest revision. With a
    canary, it names the canary's ``storageUri`` with ``canaryTrafficPercent``: KServe sends
    that share to the new revision and keeps the rest on the last revision that had all the
    traffic, which is the stable version once it has been applied alone. Without a canary
    the field is absent (set to null when patching, which removes it), so the latest
    revision, the stable model, takes everything: promoting is the canary's URI becoming
    the stable one, rolling back is the stable URI coming back. Two consequences of KServe's
    design: its "previous revision" is whatever last took all traffic, so a first apply that
    already carries a canary gives the canary all of it; and the split needs KServe's
    Serverless (Knative) mode, not RawDeployment. Replicas and resources are the served
    (latest) version's. Raises ``RuntimeFailed`` for a version KServe cannot read.
    """
    latest = state.canary or state.stable
    predictor: dict[str, Any] = {
        **_replicas(latest),
        "model": {
            "modelFormat": {"name": "mlflow"},
            "protocolVersion": "v2",
            "storageUri": kserve_storage_uri(latest),
            "resources": _resources(latest),
        },
    }
    annotations = {
        "paved.dev/stable-version": state.stable.version,
        "paved.dev/stable-model-uri": kserve_storage_uri(state.stable),
    }
    if state.canary is not None:
        predictor["canaryTrafficPercent"] = state.canary_percent
        annotations["paved.dev/canary-version"] = state.canary.version
    return {
        "apiVersion": f"{KSERVE_GROUP}/{KSERVE_VERSION}",
        "kind": "InferenceService",
        "metadata": {
            "name": inference_service_name(state),
            "namespace": namespace_for(settings, state.team),
            "labels": deployment_labels(state, state.stable),
            "annotations": annotations,
        },
        "spec": {"predictor": predictor},
    }


def version_object_name(state: DeploymentState, version: VersionSpec) -> str:
    """The name of one version's Deployment, Service and autoscaler."""
    return sanitize_name(f"{state.name}-v{version.version}")


def deployment_manifests(state: DeploymentState, settings: Settings) -> list[dict[str, Any]]:
    """Per version kept running (the previous stable one too, for a rollback): an apps/v1
    Deployment running MLflow's model server, a v1 Service in front of it, and an
    autoscaling/v2 HorizontalPodAutoscaler on its CPU. Raises ``RuntimeFailed`` for a
    version the cluster cannot read."""
    namespace = namespace_for(settings, state.team)
    manifests: list[dict[str, Any]] = []
    for version in state.kept_warm:
        name = version_object_name(state, version)
        labels = deployment_labels(state, version)
        # Selectors are immutable: only what never changes for this version's objects.
        selector = {key: labels[key] for key in ("paved.dev/deployment", "paved.dev/version")}
        metadata = {"name": name, "namespace": namespace, "labels": labels}
        manifests += [
            {
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "metadata": metadata,
                # No ``replicas``: the autoscaler owns it, and a patch setting it would undo
                # its scaling at every apply.
                "spec": {
                    "selector": {"matchLabels": selector},
                    "template": {
                        "metadata": {"labels": labels},
                        "spec": _model_server_pod(version, settings),
                    },
                },
            },
            {
                "apiVersion": "v1",
                "kind": "Service",
                "metadata": metadata,
                "spec": {
                    "type": "ClusterIP",
                    "selector": selector,
                    "ports": [{"name": "http", "port": 80, "targetPort": "http"}],
                },
            },
            {
                "apiVersion": "autoscaling/v2",
                "kind": "HorizontalPodAutoscaler",
                "metadata": metadata,
                "spec": {
                    "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
                    **_replicas(version),
                    "metrics": [
                        {
                            "type": "Resource",
                            "resource": {
                                "name": "cpu",
                                "target": {
                                    "type": "Utilization",
                                    "averageUtilization": CPU_TARGET_PERCENT,
                                },
                            },
                        }
                    ],
                },
            },
        ]
    return manifests


def _model_server_pod(version: VersionSpec, settings: Settings) -> dict[str, Any]:
    ping = {"httpGet": {"path": "/ping", "port": "http"}}
    env = {"MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "true"}
    model = served_uri(version, settings)
    tracking = cluster_tracking_uri(settings)
    if tracking is not None:
        env["MLFLOW_TRACKING_URI"] = tracking  # resolves models:/ and mlflow-artifacts: URIs
    return {
        "automountServiceAccountToken": False,
        "containers": [
            {
                "name": "model",
                "image": settings.kubernetes.image,
                "command": [
                    *("mlflow", "models", "serve", "-m", model),
                    *("--env-manager", "local"),
                    *("-h", "0.0.0.0", "-p", str(PORT)),  # noqa: S104 (the pod's own address)
                ],
                "ports": [{"name": "http", "containerPort": PORT}],
                "env": [{"name": name, "value": value} for name, value in sorted(env.items())],
                "resources": _resources(version),
                # Loading a model can take minutes; liveness starts once it answered.
                "startupProbe": {**ping, "periodSeconds": 5, "failureThreshold": 60},
                "readinessProbe": {**ping, "periodSeconds": 5, "failureThreshold": 3},
                "livenessProbe": {**ping, "periodSeconds": 10, "failureThreshold": 6},
            }
        ],
    }


def _resources(version: VersionSpec) -> dict[str, dict[str, str]]:
    quantities = {
        name: str(version.resources.get(name, default))
        for name, default in DEFAULT_RESOURCES.items()
    }
    return {"requests": quantities, "limits": dict(quantities)}


def _replicas(version: VersionSpec) -> dict[str, int]:
    least = max(1, int(version.replicas.get("min", 1)))
    return {"minReplicas": least, "maxReplicas": max(least, int(version.replicas.get("max", 1)))}


def service_url(name: str, namespace: str) -> str:
    return f"http://{name}.{namespace}.svc.cluster.local"


# -- Where a pod reads a model from --------------------------------------------------------


def cluster_tracking_uri(settings: Settings) -> str | None:
    """The MLflow tracking URI when pods can reach it: not the embedded store, not a
    loopback address."""
    tracking = settings.mlflow.tracking_uri
    return tracking if tracking is not None and _reachable(tracking) else None


def storage_uri(version: VersionSpec) -> str | None:
    """Where the version's files are, when pods can read them without MLflow."""
    source = version.source
    return source if _reachable(source) and not MLFLOW_URI.match(source) else None


def kserve_storage_uri(version: VersionSpec) -> str:
    """What KServe's storage initializer downloads the version from."""
    found = storage_uri(version)
    if found is not None:
        return found
    if _reachable(version.source):  # an MLflow scheme: mlflow-artifacts:
        raise RuntimeFailed(
            f"{_where(version)}, which KServe's storage initializer cannot read; expected a "
            f"storage URI ({REMOTE_STORES}), i.e. an MLflow server whose artifact root is "
            "one, or kubernetes.serving_mode `deployment`, which runs MLflow's own server"
        )
    raise RuntimeFailed(
        f"{_where(version)}, on the portal's machine, which the cluster cannot read; "
        f"expected artifacts in a remote store ({REMOTE_STORES}), i.e. an MLflow tracking "
        "server whose artifact root is one (mlflow.tracking_uri)"
    )


def served_uri(version: VersionSpec, settings: Settings) -> str:
    """What MLflow's model server in a pod loads: the files where they are when the
    cluster can read them, else the registry's URI for a tracking server it can reach."""
    found = storage_uri(version)
    if found is not None:
        return found
    if cluster_tracking_uri(settings) is not None:
        return version.model_uri
    shown = settings.mlflow.tracking_uri or "the embedded store"
    raise RuntimeFailed(
        f"{_where(version)}, on the portal's machine, and the cluster cannot reach its "
        f"MLflow ({shown}); expected artifacts in a remote store ({REMOTE_STORES}) or an "
        "MLflow tracking server the cluster can reach (mlflow.tracking_uri)"
    )


def check_sources(state: DeploymentState, settings: Settings) -> None:
    """Raise ``RuntimeFailed`` before touching the cluster when a version cannot be read
    there in the settings' serving mode."""
    if settings.kubernetes.serving_mode == "kserve":
        for version in state.versions:
            kserve_storage_uri(version)
    else:
        for version in state.kept_warm:
            served_uri(version, settings)


def _where(version: VersionSpec) -> str:
    return f"model {version.model} version {version.version} is at {version.source!r}"


def _reachable(uri: str) -> bool:
    """Whether a pod could reach ``uri``: not a path, not the embedded store, not loopback."""
    if not uri or LOCAL_URI.match(uri):
        return False
    host = urlsplit(uri).hostname or ""
    return not (host == "localhost" or host.startswith("127.") or host == "::1")

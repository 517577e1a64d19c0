"""The Kubernetes serving runtime: a deployment's versions as a KServe InferenceService that
splits canary traffic itself, or as a Deployment, Service and HorizontalPodAutoscaler per
version behind Paved's router (``kubernetes.serving_mode``).

``ServingRuntime.splits_traffic`` is fixed when the runtime is made, while the mode is a
setting: so there are two runtime values, both named ``kubernetes``. ``KUBERNETES`` is the
one for the default mode (``kserve``), to register in ``paved_serving_runtimes``;
``kubernetes_runtime(settings)`` gives the one matching the settings, for code that holds
them. Applied through the value of the other mode, ``apply`` fails with a line saying so
rather than serving traffic the router cannot route.

The portal's service account needs ``create``, ``patch``, ``list`` and ``delete`` on
``inferenceservices`` (serving.kserve.io) or on ``deployments`` (apps), ``services`` and
``horizontalpodautoscalers`` (autoscaling) in each team namespace, and ``list`` on them
cluster-wide: ``remove`` is given only the deployment's name, so it finds its objects by
label in every namespace.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from plugins.serving.runtimes import (
    DeploymentState,
    Log,
    RuntimeFailed,
    ServingRuntime,
    VersionSpec,
)
from portal import Settings
from portal.errors import ConfigurationError
from portal.kubernetes import (
    MANAGED_BY,
    REQUEST_TIMEOUT,
    api_client,
    api_error_types,
    describe_api_error,
    has_labels,
    is_status,
    namespace_for,
    read_json,
    sanitize_label_value,
    sanitize_name,
    select_labels,
)

if TYPE_CHECKING:
    from kubernetes.client import ApiClient

KSERVE_GROUP = "serving.kserve.io"
KSERVE_VERSION = "v1beta1"
KSERVE_PLURAL = "inferenceservices"
# KServe and Knative add suffixes (``-predictor``, ``-00001``) to the name for the objects
# they make, which must stay within 63 characters.
INFERENCE_SERVICE_MAX_LENGTH = 45
PORT = 8080
CPU_TARGET_PERCENT = 70
DEFAULT_RESOURCES = {"cpu": "1", "memory": "2Gi"}
# Where a pod cannot read a model from: the portal's own files.
LOCAL_URI = re.compile(r"^(file:|/|\.)")
# MLflow's own URI schemes: only an MLflow server (deployment mode) resolves them; KServe's
# storage initializer reads storage URIs (s3://, gs://, https://, pvc://...).
MLFLOW_URI = re.compile(r"^(models|runs|mlflow-artifacts):")
# Deletion order: the autoscaler first, so it does not scale what is going away.
DEPLOYMENT_KINDS = ("HorizontalPodAutoscaler", "Service", "Deployment")


# -- Manifests (pure) ----------------------------------------------------------------------


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
    (latest) version's.
    """
    latest = state.canary or state.stable
    predictor: dict[str, Any] = {
        **_replicas(latest),
        "model": {
            "modelFormat": {"name": "mlflow"},
            "protocolVersion": "v2",
            "storageUri": latest.model_uri,
            "resources": _resources(latest),
        },
    }
    annotations = {
        "paved.dev/stable-version": state.stable.version,
        "paved.dev/stable-model-uri": state.stable.model_uri,
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
    """Per version: an apps/v1 Deployment running MLflow's model server, a v1 Service in
    front of it, and an autoscaling/v2 HorizontalPodAutoscaler on its CPU."""
    namespace = namespace_for(settings, state.team)
    manifests: list[dict[str, Any]] = []
    for version in state.versions:
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
    tracking = settings.mlflow.tracking_uri
    if tracking is not None and not tracking.startswith(("sqlite:", "file:", "/")):
        env["MLFLOW_TRACKING_URI"] = tracking  # resolves models:/ and mlflow-artifacts: URIs
    return {
        "automountServiceAccountToken": False,
        "containers": [
            {
                "name": "model",
                "image": settings.kubernetes.image,
                "command": [
                    *("mlflow", "models", "serve", "-m", version.model_uri),
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


# -- Applying and removing -----------------------------------------------------------------


def apply(state: DeploymentState, settings: Settings, log: Log) -> dict[str, str]:
    """Bring the cluster to ``state`` in the settings' mode; the URLs it answers at."""
    mode = settings.kubernetes.serving_mode
    _check_model_uris(state, mode)
    with _connect(settings) as api:
        kinds = _kinds(api)
        namespace = namespace_for(settings, state.team)
        if mode == "kserve":
            manifest = inference_service(state, settings)
            _upsert(kinds, manifest, log)
            return {"*": service_url(manifest["metadata"]["name"], namespace)}
        for manifest in deployment_manifests(state, settings):
            _upsert(kinds, manifest, log)
        kept = {sanitize_label_value(version.version) for version in state.versions}
        _delete_versions(kinds, state, namespace, kept, log)
        return {
            version.version: service_url(version_object_name(state, version), namespace)
            for version in state.versions
        }


def remove(name: str, settings: Settings, log: Log) -> None:
    """Delete every object labelled for deployment ``name``, in any namespace.

    The kinds of the other mode are looked for too (objects left from before a change of
    ``serving_mode``), but a cluster without KServe, or a role without rights on those
    kinds, does not stop the removal.
    """
    owned = {**MANAGED_BY, "paved.dev/deployment": sanitize_label_value(name)}
    active = (
        ("InferenceService",) if settings.kubernetes.serving_mode == "kserve" else DEPLOYMENT_KINDS
    )
    with _connect(settings) as api:
        kinds = _kinds(api)
        for kind in ("InferenceService", *DEPLOYMENT_KINDS):
            try:
                found = kinds[kind].list_all(owned)
            except RuntimeFailed:
                if kind in active:
                    raise
                continue
            for obj in found:
                _delete(kinds[kind], obj, log)


def _check_model_uris(state: DeploymentState, mode: str) -> None:
    for version in state.versions:
        uri = version.model_uri
        if LOCAL_URI.match(uri):
            raise RuntimeFailed(
                f"model {version.model} version {version.version} is at {uri!r}, a path on "
                "the portal's machine that the cluster cannot read; expected artifacts in a "
                "remote store (s3://, gs://, https://), i.e. an MLflow tracking server with "
                "one (mlflow.tracking_uri)"
            )
        if mode == "kserve" and MLFLOW_URI.match(uri):
            raise RuntimeFailed(
                f"model {version.model} version {version.version} is at {uri!r}, which "
                "KServe's storage initializer cannot read; expected a storage URI (s3://, "
                "gs://, https://), or kubernetes.serving_mode `deployment`, which runs "
                "MLflow's own server"
            )


def _connect(settings: Settings) -> ApiClient:
    try:
        return api_client(settings)
    except ConfigurationError as exc:
        raise RuntimeFailed(str(exc)) from None


@dataclass(frozen=True)
class _Kind:
    """How the client creates, patches, lists and deletes one kind of object."""

    kind: str
    create: Callable[[str, dict[str, Any]], object]  # (namespace, manifest)
    patch: Callable[[str, str, dict[str, Any]], object]  # (name, namespace, patch)
    list_namespaced: Callable[..., object]  # (namespace, label_selector=...)
    list_cluster: Callable[..., object]  # (label_selector=...)
    delete: Callable[[str, str], object]  # (name, namespace)

    def list_in(self, namespace: str, labels: dict[str, str]) -> list[dict[str, Any]]:
        return self._list(
            f"{self.kind}s in {namespace}", self.list_namespaced, namespace, labels=labels
        )

    def list_all(self, labels: dict[str, str]) -> list[dict[str, Any]]:
        return self._list(f"{self.kind}s", self.list_cluster, labels=labels)

    def _list(
        self, shown: str, call: Callable[..., object], *args: str, labels: dict[str, str]
    ) -> list[dict[str, Any]]:
        try:
            found = read_json(call, *args, label_selector=select_labels(labels))
        except api_error_types() as exc:
            raise RuntimeFailed(f"cannot list {shown}: {describe_api_error(exc)}") from None
        return [obj for obj in found.get("items") or [] if has_labels(obj, labels)]


def _kinds(api: ApiClient) -> dict[str, _Kind]:
    from kubernetes import client

    apps = client.AppsV1Api(api)
    core = client.CoreV1Api(api)
    autoscaling = client.AutoscalingV2Api(api)
    custom = client.CustomObjectsApi(api)
    kserve = (KSERVE_GROUP, KSERVE_VERSION)
    return {
        "Deployment": _Kind(
            "Deployment",
            create=lambda namespace, manifest: apps.create_namespaced_deployment(
                namespace,
                client.V1Deployment.model_validate(manifest),
                _request_timeout=REQUEST_TIMEOUT,
            ),
            patch=lambda name, namespace, body: apps.patch_namespaced_deployment(
                name, namespace, body, _request_timeout=REQUEST_TIMEOUT
            ),
            list_namespaced=apps.list_namespaced_deployment,
            list_cluster=apps.list_deployment_for_all_namespaces,
            delete=lambda name, namespace: apps.delete_namespaced_deployment(
                name, namespace, _request_timeout=REQUEST_TIMEOUT
            ),
        ),
        "Service": _Kind(
            "Service",
            create=lambda namespace, manifest: core.create_namespaced_service(
                namespace,
                client.V1Service.model_validate(manifest),
                _request_timeout=REQUEST_TIMEOUT,
            ),
            patch=lambda name, namespace, body: core.patch_namespaced_service(
                name, namespace, body, _request_timeout=REQUEST_TIMEOUT
            ),
            list_namespaced=core.list_namespaced_service,
            list_cluster=core.list_service_for_all_namespaces,
            delete=lambda name, namespace: core.delete_namespaced_service(
                name, namespace, _request_timeout=REQUEST_TIMEOUT
            ),
        ),
        "HorizontalPodAutoscaler": _Kind(
            "HorizontalPodAutoscaler",
            create=lambda namespace, manifest: (
                autoscaling.create_namespaced_horizontal_pod_autoscaler(
                    namespace,
                    client.V2HorizontalPodAutoscaler.model_validate(manifest),
                    _request_timeout=REQUEST_TIMEOUT,
                )
            ),
            patch=lambda name, namespace, body: (
                autoscaling.patch_namespaced_horizontal_pod_autoscaler(
                    name, namespace, body, _request_timeout=REQUEST_TIMEOUT
                )
            ),
            list_namespaced=autoscaling.list_namespaced_horizontal_pod_autoscaler,
            list_cluster=autoscaling.list_horizontal_pod_autoscaler_for_all_namespaces,
            delete=lambda name, namespace: autoscaling.delete_namespaced_horizontal_pod_autoscaler(
                name, namespace, _request_timeout=REQUEST_TIMEOUT
            ),
        ),
        # A custom resource: the client sends the dict as it is, as a JSON merge patch.
        "InferenceService": _Kind(
            "InferenceService",
            create=lambda namespace, manifest: custom.create_namespaced_custom_object(
                *kserve, namespace, KSERVE_PLURAL, manifest, _request_timeout=REQUEST_TIMEOUT
            ),
            patch=lambda name, namespace, body: custom.patch_namespaced_custom_object(
                *kserve, namespace, KSERVE_PLURAL, name, body, _request_timeout=REQUEST_TIMEOUT
            ),
            list_namespaced=functools.partial(
                custom.list_namespaced_custom_object, *kserve, plural=KSERVE_PLURAL
            ),
            list_cluster=functools.partial(
                custom.list_cluster_custom_object, *kserve, KSERVE_PLURAL
            ),
            delete=lambda name, namespace: custom.delete_namespaced_custom_object(
                *kserve, namespace, KSERVE_PLURAL, name, _request_timeout=REQUEST_TIMEOUT
            ),
        ),
    }


def _upsert(kinds: dict[str, _Kind], manifest: dict[str, Any], log: Log) -> None:
    """Create the object; when it exists (409), patch it to the manifest."""
    kind = kinds[manifest["kind"]]
    name, namespace = manifest["metadata"]["name"], manifest["metadata"]["namespace"]
    shown = f"{kind.kind} {namespace}/{name}"
    errors = api_error_types()
    try:
        kind.create(namespace, manifest)
    except errors as exc:
        if not is_status(exc, 409):
            raise RuntimeFailed(f"cannot create {shown}: {describe_api_error(exc)}") from None
    else:
        log(f"created {shown}")
        return
    try:
        kind.patch(name, namespace, _patch_body(manifest))
    except errors as exc:
        raise RuntimeFailed(f"cannot update {shown}: {describe_api_error(exc)}") from None
    log(f"updated {shown}")


def _patch_body(manifest: dict[str, Any]) -> dict[str, Any]:
    """The manifest as a patch. A patch only sets what it names: a canary that is gone is
    named with null (``canaryTrafficPercent``), which a merge patch removes."""
    if manifest["kind"] != "InferenceService":
        return manifest
    predictor = manifest["spec"]["predictor"]
    return {**manifest, "spec": {"predictor": {"canaryTrafficPercent": None, **predictor}}}


def _delete_versions(
    kinds: dict[str, _Kind], state: DeploymentState, namespace: str, kept: set[str], log: Log
) -> None:
    """Delete the deployment's objects in ``namespace`` of versions not in ``kept``."""
    owned = {**MANAGED_BY, "paved.dev/deployment": sanitize_label_value(state.name)}
    for kind in DEPLOYMENT_KINDS:
        for obj in kinds[kind].list_in(namespace, owned):
            if obj["metadata"]["labels"].get("paved.dev/version") not in kept:
                _delete(kinds[kind], obj, log)


def _delete(kind: _Kind, obj: dict[str, Any], log: Log) -> None:
    name, namespace = obj["metadata"]["name"], obj["metadata"].get("namespace", "")
    shown = f"{kind.kind} {namespace}/{name}"
    try:
        kind.delete(name, namespace)
    except api_error_types() as exc:
        if not is_status(exc, 404):
            raise RuntimeFailed(f"cannot delete {shown}: {describe_api_error(exc)}") from None
    log(f"deleted {shown}")


# -- The runtimes --------------------------------------------------------------------------


def _runtime_for(mode: str) -> ServingRuntime:
    def apply_in_mode(state: DeploymentState, settings: Settings, log: Log) -> dict[str, str]:
        actual = settings.kubernetes.serving_mode
        if actual != mode:
            raise RuntimeFailed(
                f"kubernetes.serving_mode is {actual!r}, but this kubernetes runtime was made "
                f"for {mode!r}; expected the runtime from kubernetes_runtime(settings)"
            )
        return apply(state, settings, log)

    described = (
        "a KServe InferenceService per deployment; KServe splits canary traffic"
        if mode == "kserve"
        else "a Deployment, Service and autoscaler per model version, in the team's namespace"
    )
    return ServingRuntime(
        name="kubernetes",
        description=f"Kubernetes: {described}",
        apply=apply_in_mode,
        remove=remove,
        splits_traffic=mode == "kserve",
    )


KUBERNETES = _runtime_for("kserve")
KUBERNETES_DEPLOYMENTS = _runtime_for("deployment")


def kubernetes_runtime(settings: Settings) -> ServingRuntime:
    """The kubernetes runtime for ``kubernetes.serving_mode``: ``KUBERNETES`` (KServe splits
    the traffic) or ``KUBERNETES_DEPLOYMENTS`` (Paved's router splits it)."""
    return KUBERNETES if settings.kubernetes.serving_mode == "kserve" else KUBERNETES_DEPLOYMENTS

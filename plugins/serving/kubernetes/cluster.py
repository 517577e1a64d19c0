"""The Kubernetes serving runtime against a cluster: apply a deployment's manifests (create,
or patch what exists), delete the versions no longer kept, remove a deployment; and the two
runtime values, one per ``kubernetes.serving_mode``."""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from plugins.serving.kubernetes.manifests import (
    KSERVE_GROUP,
    KSERVE_PLURAL,
    KSERVE_VERSION,
    check_sources,
    deployment_manifests,
    inference_service,
    service_url,
    version_object_name,
)
from plugins.serving.runtimes import (
    SPLIT_BY_RUNTIME,
    DeploymentState,
    Log,
    RuntimeFailed,
    ServingRuntime,
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
    select_labels,
)

if TYPE_CHECKING:
    from kubernetes.client import ApiClient

# Deletion order: the autoscaler first, so it does not scale what is going away.
DEPLOYMENT_KINDS = ("HorizontalPodAutoscaler", "Service", "Deployment")


# -- Applying and removing -----------------------------------------------------------------


def apply(state: DeploymentState, settings: Settings, log: Log) -> dict[str, str]:
    """Bring the cluster to ``state`` in the settings' mode; the URLs it answers at."""
    mode = settings.kubernetes.serving_mode
    check_sources(state, settings)
    with _connect(settings) as api:
        kinds = _kinds(api)
        namespace = namespace_for(settings, state.team)
        if mode == "kserve":
            manifest = inference_service(state, settings)
            _upsert(kinds, manifest, log)
            return {SPLIT_BY_RUNTIME: service_url(manifest["metadata"]["name"], namespace)}
        for manifest in deployment_manifests(state, settings):
            _upsert(kinds, manifest, log)
        # The previous stable version stays, without traffic, for a rollback.
        kept = {sanitize_label_value(version.version) for version in state.kept_warm}
        _delete_versions(kinds, state, namespace, kept, log)
        return {
            version.version: service_url(version_object_name(state, version), namespace)
            for version in state.kept_warm
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
    metadata = manifest["metadata"]
    annotations = {"paved.dev/canary-version": None, **metadata["annotations"]}
    return {
        **manifest,
        "metadata": {**metadata, "annotations": annotations},
        "spec": {"predictor": {"canaryTrafficPercent": None, **predictor}},
    }


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

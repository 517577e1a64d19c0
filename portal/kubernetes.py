"""Reaching a Kubernetes cluster: the API client the settings describe, team namespaces,
names and labels Kubernetes accepts, and API errors told in one line.

The ``kubernetes`` package is imported inside the functions: it takes a noticeable part of a
second to import, and the portal must start fast whether or not a cluster is used.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from portal.errors import ConfigurationError, FieldProblem

if TYPE_CHECKING:
    from kubernetes.client import ApiClient

    from portal.settings import Settings

# A DNS-1123 label: what namespaces, Services and most object names must be.
NAME_MAX_LENGTH = 63
LABEL_VALUE_MAX_LENGTH = 63
MANAGED_BY = {"app.kubernetes.io/managed-by": "paved"}
# Seconds to connect and to wait for an answer, for every call but a followed log.
REQUEST_TIMEOUT = (5.0, 30.0)


def api_client(settings: Settings) -> ApiClient:
    """An API client for the cluster ``settings.kubernetes`` names; close it after use.

    Where its address and credentials come from, first match wins:

    1. ``kubeconfig`` (and ``context``) when set, its server replaced by ``api_url`` if set;
    2. ``api_url`` alone: that address with no credentials (``kubectl proxy``, a test server);
    3. the pod's service account when Paved runs in a pod;
    4. ``~/.kube/config`` (and ``context``).

    Raises ``ConfigurationError`` naming the setting when none of these can be used.
    """
    from kubernetes import client, config

    k8s = settings.kubernetes
    if k8s.api_url is not None and not k8s.api_url.startswith(("http://", "https://")):
        raise _invalid(
            "kubernetes.api_url", f"{k8s.api_url!r} is not an http(s) URL", "https://host:6443"
        )
    configuration = client.Configuration()
    try:
        if k8s.kubeconfig is not None:
            if not k8s.kubeconfig.is_file():
                raise _invalid(
                    "kubernetes.kubeconfig",
                    f"{str(k8s.kubeconfig)!r} is not a file",
                    "the path of a kubeconfig file",
                )
            config.load_kube_config(  # type: ignore[no-untyped-call]
                config_file=str(k8s.kubeconfig),
                context=k8s.context,
                client_configuration=configuration,
                persist_config=False,
            )
        elif k8s.api_url is None and is_in_cluster():
            config.load_incluster_config(  # type: ignore[no-untyped-call]
                client_configuration=configuration
            )
        elif k8s.api_url is None:
            config.load_kube_config(  # type: ignore[no-untyped-call]
                context=k8s.context, client_configuration=configuration, persist_config=False
            )
        # An api_url alone gets no credentials: they would travel to an address that no
        # kubeconfig named (a test server, or `kubectl proxy`, which adds its own).
    except config.ConfigException as exc:
        field = "kubernetes.context" if k8s.context else "kubernetes.kubeconfig"
        raise _invalid(
            field,
            f"cannot load the cluster's configuration: {_one_line(str(exc))}",
            "a readable kubeconfig with that context, or kubernetes.api_url",
        ) from None
    if k8s.api_url is not None:
        configuration.host = k8s.api_url.rstrip("/")
    return client.ApiClient(configuration)


def is_in_cluster() -> bool:
    """Whether this process runs in a Kubernetes pod with a service account token."""
    return (
        bool(os.environ.get("KUBERNETES_SERVICE_HOST"))
        and Path("/var/run/secrets/kubernetes.io/serviceaccount/token").is_file()
    )


def namespace_for(settings: Settings, team: str) -> str:
    """The namespace of ``team``'s jobs and model servers (``team-fraud`` by default)."""
    return sanitize_name(settings.kubernetes.namespace.replace("{team}", team))


def sanitize_name(text: str, *, max_length: int = NAME_MAX_LENGTH) -> str:
    """``text`` as a DNS-1123 label Kubernetes accepts as a name (``Fraud_Model`` ->
    ``fraud-model``): lower case, ``-`` for anything else, starting with a letter, and
    shortened with a hash of the original when longer than ``max_length``."""
    name = re.sub(r"[^a-z0-9-]+", "-", text.lower()).strip("-")
    name = re.sub(r"-{2,}", "-", name)
    if not name or not name[0].isalpha():
        name = f"x-{name}".rstrip("-")
    if len(name) > max_length:
        digest = hashlib.sha256(text.encode()).hexdigest()[:8]
        name = f"{name[: max_length - 9].rstrip('-')}-{digest}"
    return name


def sanitize_label_value(text: str) -> str:
    """``text`` as a label value: at most 63 of ``[A-Za-z0-9._-]``, starting and ending
    with a letter or digit (``component:default/fraud`` -> ``component-default-fraud``)."""
    value = re.sub(r"[^A-Za-z0-9._-]+", "-", text)
    value = re.sub(r"^[^A-Za-z0-9]+|[^A-Za-z0-9]+$", "", value)
    if len(value) > LABEL_VALUE_MAX_LENGTH:
        digest = hashlib.sha256(text.encode()).hexdigest()[:8]
        head = re.sub(r"[^A-Za-z0-9]+$", "", value[: LABEL_VALUE_MAX_LENGTH - 9])
        value = f"{head}-{digest}"
    return value


def select_labels(labels: dict[str, str]) -> str:
    """A label selector matching every one of ``labels`` (``a=1,b=2``)."""
    return ",".join(f"{key}={value}" for key, value in sorted(labels.items()))


def has_labels(obj: dict[str, Any], labels: dict[str, str]) -> bool:
    """Whether ``obj`` (a manifest or an object read back) carries every one of ``labels``.

    The API server already filters by label selector; callers check again before deleting,
    so a server (or proxy) that ignores the selector cannot make Paved delete others' objects.
    """
    have = (obj.get("metadata") or {}).get("labels") or {}
    return all(have.get(key) == value for key, value in labels.items())


def read_json(call: Callable[..., Any], *args: Any, **kwargs: Any) -> dict[str, Any]:
    """Call a read or list method of the client and take its answer as plain JSON: the API's
    own objects (camelCase), with fields this client's models do not know kept, and none
    refused by their validation."""
    response = call(*args, _preload_content=False, _request_timeout=REQUEST_TIMEOUT, **kwargs)
    try:
        data = json.loads(response.data)
    finally:
        response.release_conn()
    return data if isinstance(data, dict) else {}


def api_error_types() -> tuple[type[Exception], ...]:
    """What a call to the API raises when the cluster says no or cannot be reached."""
    import urllib3
    from kubernetes.client.exceptions import ApiException

    return (ApiException, urllib3.exceptions.HTTPError, OSError)


def describe_api_error(exc: BaseException) -> str:
    """One line a person can act on: the status, the reason and the API's own message,
    e.g. ``403 Forbidden: jobs.batch is forbidden: User "paved" cannot create ...``."""
    status = getattr(exc, "status", None)
    if status is None:  # no answer at all: refused, timed out, TLS
        why = getattr(exc, "reason", None) or exc
        return f"the API server cannot be reached: {_one_line(str(why))}"
    reason = getattr(exc, "reason", None) or ""
    message = _api_message(getattr(exc, "body", None))
    head = f"{status} {reason}".strip()
    return f"{head}: {message}" if message else head


def is_status(exc: BaseException, *statuses: int) -> bool:
    """Whether ``exc`` is the API answering with one of ``statuses`` (404, 409...)."""
    return getattr(exc, "status", None) in statuses


def _api_message(body: Any) -> str | None:
    """The ``message`` of a Kubernetes ``Status`` body, else the body's first line."""
    if not body:
        return None
    text = body.decode(errors="replace") if isinstance(body, bytes) else str(body)
    try:
        status = json.loads(text)
    except ValueError:
        return _one_line(text)[:300] or None
    if isinstance(status, dict) and status.get("message"):
        return _one_line(str(status["message"]))
    return None


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _invalid(field: str, message: str, expected: str) -> ConfigurationError:
    return ConfigurationError(f"{field}: {message}", [FieldProblem(field, message, expected)])

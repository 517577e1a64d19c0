"""The settings sections of the ML lifecycle: MLflow, Kubernetes, training, serving."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import (
    BaseModel,
    Field,
)


class MlflowSettings(BaseModel):
    """Where runs, models and their artifacts are tracked (MLflow)."""

    tracking_uri: str | None = Field(
        None,
        description="MLflow tracking and registry URI (e.g. `http://mlflow:5000`). Unset: "
        "an embedded store, a SQLite file and an artifact folder under `<data_dir>/mlflow`.",
    )
    ui_url: str | None = Field(
        None,
        description="Address where people open MLflow's UI, for the links on run and model "
        "pages. Default: the embedded server's, when it runs; else no links.",
    )
    embedded_server: bool = Field(
        True,
        description="When the store is embedded, `paved up` starts `mlflow server` on it (UI "
        "and REST) beside the portal, with its job execution turned off.",
    )
    embedded_port: int = Field(
        5000, ge=1, le=65535, description="Port of the embedded MLflow server (loopback)."
    )


class KubernetesSettings(BaseModel):
    """How the Kubernetes training backend and serving runtime reach a cluster."""

    kubeconfig: Path | None = Field(
        None,
        description="Kubeconfig file to use. Unset: the in-cluster service account when "
        "Paved runs in a pod, else `~/.kube/config`.",
    )
    context: str | None = Field(None, description="Kubeconfig context to use.")
    api_url: str | None = Field(
        None,
        description="API server URL, overriding the kubeconfig's (with `insecure` for a "
        "server without TLS, as in tests).",
    )
    namespace: str = Field(
        "team-{team}",
        description="Namespace of a team's jobs and model servers; `{team}` is the owning "
        "group's name.",
    )
    image: str = Field(
        "ghcr.io/paved/ml-runtime:latest",
        description="Container image that clones a project and runs it (training) or "
        "serves an MLflow model (serving).",
    )
    ttl_seconds_after_finished: int = Field(
        3600, ge=0, description="How long a finished training Job is kept before deletion."
    )
    serving_mode: Literal["kserve", "deployment"] = Field(
        "kserve",
        description="`kserve`: an InferenceService (KServe splits canary traffic); "
        "`deployment`: a Deployment, Service and HorizontalPodAutoscaler per version.",
    )


class TrainingSettings(BaseModel):
    """How training jobs run."""

    default_backend: str = Field(
        "local",
        description="Backend of a job whose project names none (`local`, `kubernetes`, or "
        "one a plugin adds).",
    )
    python: Path | None = Field(
        None,
        description="Python interpreter the local runner gives a project's `python` entry "
        "point. Default: the one running the portal.",
    )
    work_root: Path | None = Field(
        None,
        description="Folder where the local runner checks out each job's project. "
        "Default: `<data_dir>/training`.",
    )
    max_memory: str = Field(
        "8Gi",
        description="Most memory a local job may ask for (its project's "
        "`training.resources.memory`); the job is stopped above what it asked.",
    )
    max_cpu: float = Field(
        4, gt=0, description="Most CPUs a local job may ask for (`training.resources.cpu`)."
    )
    max_timeout_minutes: int = Field(
        24 * 60, ge=1, description="Longest a job may run before it is stopped."
    )


class ServingSettings(BaseModel):
    """How deployed models are served."""

    environments: list[str] = Field(
        default_factory=lambda: ["staging", "production"],
        description="Environments a model can be deployed to; the policy treats "
        "`production` specially.",
    )
    default_runtime: str = Field(
        "local",
        description="Runtime of a deployment that names none (`local`, `kubernetes`, or one "
        "a plugin adds).",
    )
    python: Path | None = Field(
        None,
        description="Python interpreter of local model servers. Default: the portal's.",
    )
    ports: tuple[int, int] = Field(
        (8100, 8999), description="Range of loopback ports local model servers listen on."
    )
    start_timeout: float = Field(
        60, gt=0, description="Seconds a model server has to answer its health check."
    )
    metrics_window: float = Field(
        60,
        gt=0,
        description="Seconds of requests the router keeps per version to judge a canary "
        "(error rate, p99).",
    )
    min_canary_requests: int = Field(
        20,
        ge=1,
        description="Requests a canary must have served in the window before its error "
        "rate or p99 can roll it back.",
    )
    judge_interval: float = Field(
        1.0, gt=0, le=60, description="Seconds between two checks of every canary's figures."
    )
    route_cache_seconds: float = Field(
        1.0,
        ge=0,
        le=60,
        description="Seconds the router keeps a deployment's route before reading it again: "
        "how long a change made by another portal process takes to reach this one.",
    )
    drift_sample_every: int = Field(
        10, ge=1, description="Read the features of one request in this many, for drift."
    )

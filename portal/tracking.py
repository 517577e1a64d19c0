"""MLflow, Paved's tracking server and model registry: the client every plugin uses, the
embedded store under the data directory, and the embedded ``mlflow server`` for its UI.

MLflow takes about two seconds to import, so nothing here imports it before it is used.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
from functools import cache
from typing import TYPE_CHECKING
from urllib.parse import quote

from portal.errors import EngineUnavailable

if TYPE_CHECKING:
    from mlflow import MlflowClient
    from mlflow.entities.model_registry import ModelVersion

    from portal.settings import Settings

log = logging.getLogger("paved.tracking")
# MLflow's own variables for every process Paved starts: no telemetry, and no job machinery
# in the embedded server (it costs gigabytes of memory).
QUIET_MLFLOW = {
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "DO_NOT_TRACK": "true",
    "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
}
_lock = threading.Lock()


def tracking_client(settings: Settings) -> MlflowClient:
    """The MLflow client for the settings' tracking URI (the embedded store by default)."""
    if settings.mlflow.tracking_uri is None:
        settings.mlflow_dir.mkdir(parents=True, exist_ok=True)
    return _client(settings.tracking_uri)


@cache
def _client(uri: str) -> MlflowClient:
    with _lock:  # MLflow creates a new SQLite store's tables on first use: once
        for name, value in QUIET_MLFLOW.items():
            os.environ.setdefault(name, value)
        from mlflow import MlflowClient

        return MlflowClient(tracking_uri=uri, registry_uri=uri)


def ensure_experiment(settings: Settings, name: str) -> str:
    """The id of the experiment ``name``, created when missing (in the embedded store, with
    its artifacts under the data directory rather than wherever the process runs)."""
    from mlflow.exceptions import MlflowException

    client = tracking_client(settings)
    try:
        found = client.get_experiment_by_name(name)
        if found is not None:
            return str(found.experiment_id)
        location = None
        if settings.mlflow.tracking_uri is None:
            location = (settings.mlflow_dir / "artifacts" / name).as_uri()
        return str(client.create_experiment(name, artifact_location=location))
    except MlflowException as exc:
        raise EngineUnavailable(f"MLflow at {shown_uri(settings)} refused: {exc.message}") from None


def register_model(
    settings: Settings, model_uri: str, name: str, *, tags: dict[str, str]
) -> ModelVersion:
    """A new version of the registered model ``name`` from ``model_uri`` (``runs:/<id>/model``),
    made with MLflow's own registration (which finds a run's logged model), the registered
    model created when missing."""
    import mlflow

    tracking_client(settings)  # the store, created once
    with _lock:  # MLflow registers through its global URIs: one registration at a time
        mlflow.set_tracking_uri(settings.tracking_uri)
        mlflow.set_registry_uri(settings.tracking_uri)
        return mlflow.register_model(model_uri, name, tags=tags, await_registration_for=0)


def shown_uri(settings: Settings) -> str:
    """The tracking URI to show a person: credentials left out."""
    uri = settings.tracking_uri
    scheme, _, rest = uri.partition("://")
    return f"{scheme}://{rest.rsplit('@', 1)[-1]}" if rest else uri


def ui_url(settings: Settings) -> str | None:
    """Where people open MLflow's UI, or None when there is none to link to."""
    if settings.mlflow.ui_url:
        return settings.mlflow.ui_url.rstrip("/")
    if settings.mlflow.tracking_uri is None:
        return (
            f"http://127.0.0.1:{settings.mlflow.embedded_port}"
            if settings.mlflow.embedded_server
            else None
        )
    uri = settings.mlflow.tracking_uri
    return uri.rstrip("/") if uri.startswith(("http://", "https://")) else None


def run_url(settings: Settings, experiment_id: str, run_id: str) -> str | None:
    base = ui_url(settings)
    return f"{base}/#/experiments/{experiment_id}/runs/{run_id}" if base else None


def model_version_url(settings: Settings, name: str, version: str | int) -> str | None:
    base = ui_url(settings)
    return f"{base}/#/models/{quote(name)}/versions/{version}" if base else None


class EmbeddedServer:
    """``mlflow server`` on the embedded store, started by ``paved up`` for MLflow's UI."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def command(self) -> list[str]:
        settings = self.settings
        return [
            sys.executable,
            "-m",
            "mlflow",
            "server",
            "--backend-store-uri",
            settings.tracking_uri,
            "--default-artifact-root",
            (settings.mlflow_dir / "artifacts").as_uri(),
            "--host",
            "127.0.0.1",
            "--port",
            str(settings.mlflow.embedded_port),
            "--workers",
            "1",
        ]

    def start(self) -> None:
        """Start the server in the background; the portal does not wait for it."""
        self.settings.mlflow_dir.mkdir(parents=True, exist_ok=True)
        log_file = (self.settings.mlflow_dir / "server.log").open("ab")
        self.process = subprocess.Popen(
            self.command,
            env={**os.environ, **QUIET_MLFLOW},
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log_file.close()
        log.info("MLflow server starting at %s (pid %s)", ui_url(self.settings), self.process.pid)

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        # Its own session: the signal reaches the server's workers too.
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()

"""The local runtime: real model server processes for versions of a real scikit-learn model
registered in the test's MLflow store; and, without MLflow, how it reports servers that will
not start."""

from __future__ import annotations

import os
import shutil
import stat
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

import httpx
import pytest

from plugins.serving.local import LocalServers, local_runtime
from plugins.serving.runtimes import DeploymentState, RuntimeFailed, VersionSpec
from portal.settings import Settings
from portal.tracking import ensure_experiment, register_model, tracking_client

DEPLOYMENT = "churn-staging"
MODEL = "churn"


@pytest.fixture
def settings(settings: Settings) -> Settings:
    serving = settings.serving.model_copy(update={"start_timeout": 30.0})
    return settings.model_copy(update={"serving": serving})


@pytest.fixture
def servers() -> Iterator[LocalServers]:
    servers = LocalServers()
    try:
        yield servers
    finally:
        servers.stop_all()


class Lines(list[str]):
    """A runtime's log, kept to read back."""

    def __call__(self, line: str) -> None:
        self.append(line)


@dataclass
class Registered:
    """Versions of the registered model ``churn``: ``uris[version]`` is its source."""

    uris: dict[str, str]
    artifacts: dict[str, Path]

    def spec(self, version: str) -> VersionSpec:
        return VersionSpec(model=MODEL, version=version, model_uri=self.uris[version])


@pytest.fixture
def registered(settings: Settings, mlflow_store: Path) -> Iterator[Registered]:
    """``churn`` v1 and v2 (one logged model, y = x0 / 2) and v3 (another one), in the
    test's MLflow store."""
    import mlflow
    import numpy as np
    from sklearn.linear_model import LinearRegression

    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(settings.tracking_uri)
    try:
        experiment = ensure_experiment(settings, MODEL)
        x = np.array([[0.0, 1.0], [1.0, 0.0], [2.0, 1.0], [3.0, 0.0]])
        logged = []
        for slope in (0.5, 2.0):
            with mlflow.start_run(experiment_id=experiment):
                model = LinearRegression().fit(x, x[:, 0] * slope)
                # Explicit requirements: inferring them costs seconds.
                logged.append(
                    mlflow.sklearn.log_model(
                        model, name="model", pip_requirements=["scikit-learn"], input_example=x[:1]
                    )
                )
        sources = [logged[0], logged[0], logged[1]]
        versions = [register_model(settings, info.model_uri, MODEL, tags={}) for info in sources]
        client = tracking_client(settings)
        yield Registered(
            uris={str(v.version): str(v.source) for v in versions},
            artifacts={
                str(v.version): Path(
                    urlparse(client.get_logged_model(info.model_id).artifact_location).path
                )
                for v, info in zip(versions, sources, strict=True)
            },
        )
    finally:
        mlflow.set_tracking_uri(previous)


def state(
    stable: VersionSpec, canary: VersionSpec | None = None, percent: int = 0
) -> DeploymentState:
    return DeploymentState(
        name=DEPLOYMENT,
        environment="staging",
        owner="group:default/fraud",
        stable=stable,
        canary=canary,
        canary_percent=percent,
    )


def predict(url: str, body: dict[str, object]) -> httpx.Response:
    return httpx.post(f"{url}/invocations", json=body, timeout=10)


def pid_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.mark.slow
def test_versions_start_serve_and_stop_as_the_state_says(
    registered: Registered, settings: Settings, servers: LocalServers
) -> None:
    log = Lines()
    v1, v2 = registered.spec("1"), registered.spec("2")

    endpoints = servers.apply(state(v1), settings, log)

    assert list(endpoints) == ["1"]
    url = endpoints["1"]
    assert httpx.get(f"{url}/ping").status_code == 200
    assert httpx.get(f"{url}/health").status_code == 200
    answer = predict(url, {"inputs": [[1.0, 2.0], [4.0, 0.0]]})
    assert answer.status_code == 200, answer.text
    assert answer.json()["predictions"] == pytest.approx([0.5, 2.0])
    split = {"dataframe_split": {"data": [[2.0, 0.0]]}}
    assert predict(url, split).json()["predictions"] == pytest.approx([1.0])
    assert predict(url, {"instances": [[6.0, 1.0]]}).json()["predictions"] == pytest.approx([3.0])
    assert predict(url, {"nothing": []}).status_code == 400
    v1_server = servers.server(DEPLOYMENT, "1")
    assert v1_server is not None
    v1_pid = v1_server.process.pid
    assert (settings.data_dir / "serving" / DEPLOYMENT / "1.log").is_file()

    endpoints = servers.apply(state(v1, v2, 10), settings, log)

    assert endpoints.keys() == {"1", "2"}
    assert endpoints["1"] == url  # kept, not restarted
    assert servers.server(DEPLOYMENT, "1") is v1_server
    assert predict(endpoints["2"], {"inputs": [[1.0, 2.0]]}).json() == {
        "predictions": [pytest.approx(0.5)]
    }

    endpoints = servers.apply(state(v2), settings, log)

    assert list(endpoints) == ["2"]
    assert not servers.is_alive(DEPLOYMENT, "1")
    assert not pid_exists(v1_pid)
    assert servers.is_alive(DEPLOYMENT, "2")
    assert servers.endpoints(DEPLOYMENT) == endpoints
    assert f"stopped the model server of churn v1 (pid {v1_pid})" in log

    v2_pid = servers.server(DEPLOYMENT, "2").process.pid  # type: ignore[union-attr]
    servers.remove(DEPLOYMENT, settings, log)

    assert servers.endpoints(DEPLOYMENT) == {}
    assert not servers.is_alive(DEPLOYMENT, "2")
    assert not pid_exists(v2_pid)


@pytest.mark.slow
def test_a_version_whose_artifacts_are_gone_fails_and_the_running_servers_keep_answering(
    registered: Registered, settings: Settings, servers: LocalServers
) -> None:
    log = Lines()
    v1, v3 = registered.spec("1"), registered.spec("3")
    url = servers.apply(state(v1), settings, log)["1"]
    shutil.rmtree(registered.artifacts["3"])

    with pytest.raises(RuntimeFailed) as failed:
        servers.apply(state(v1, v3, 10), settings, log)

    message = str(failed.value)
    assert message.startswith("model server for churn v3 exited with status 1: cannot load model ")
    assert "\n" not in message
    assert servers.endpoints(DEPLOYMENT) == {"1": url}
    assert servers.server(DEPLOYMENT, "3") is None
    assert predict(url, {"inputs": [[1.0, 2.0]]}).json()["predictions"] == pytest.approx([0.5])
    last_line = message.split("exited with status 1: ", 1)[1]
    assert last_line in (settings.data_dir / "serving" / DEPLOYMENT / "3.log").read_text()


# Without MLflow: interpreters that stand in for a model server that will not start. --------


def stand_in(tmp_path: Path, script: str) -> Path:
    """An executable that is given the model server's command line in place of Python."""
    path = tmp_path / "python"
    path.write_text(f"#!/bin/sh\n{script}\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


def with_python(settings: Settings, python: Path, **serving: object) -> Settings:
    update = settings.serving.model_copy(update={"python": python, **serving})
    return settings.model_copy(update={"serving": update})


SPEC = VersionSpec(model=MODEL, version="7", model_uri="models:/churn/7")


def test_a_server_that_exits_is_reported_with_its_last_line(
    tmp_path: Path, settings: Settings, servers: LocalServers
) -> None:
    python = stand_in(tmp_path, 'echo "loading $4" >&2; echo "no such model" >&2; exit 3')
    log = Lines()

    with pytest.raises(RuntimeFailed) as failed:
        servers.apply(state(SPEC), with_python(settings, python), log)

    assert str(failed.value) == "model server for churn v7 exited with status 3: no such model"
    assert "churn v7 | loading models:/churn/7" in log
    assert servers.endpoints(DEPLOYMENT) == {}


def test_a_server_that_never_answers_is_stopped_after_the_start_timeout(
    tmp_path: Path, settings: Settings, servers: LocalServers
) -> None:
    python = stand_in(tmp_path, "echo starting; exec sleep 60")

    with pytest.raises(RuntimeFailed) as failed:
        servers.apply(state(SPEC), with_python(settings, python, start_timeout=0.5), Lines())

    assert (
        str(failed.value) == "model server for churn v7 did not answer /ping within 0.5 s: starting"
    )
    assert servers.server(DEPLOYMENT, "7") is None


# Answers GET /ping on the listening socket the runtime passes ("--fd N": "$6"), in ~50 ms;
# first it says whether another process could still bind that socket's port.
PING_SERVER = f"""exec {sys.executable} -c '
import http.server, socket, sys
listener = socket.socket(fileno=int(sys.argv[1]))
port = listener.getsockname()[1]
with socket.socket() as other:
    other.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        other.bind(("127.0.0.1", port))
        print(f"port {{port}} was free", flush=True)
    except OSError:
        print(f"port {{port}} is held", flush=True)
class Ping(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.end_headers()
server = http.server.HTTPServer(listener.getsockname(), Ping, bind_and_activate=False)
server.socket.close()
server.socket = listener
server.serve_forever()
' "$6"
"""


def test_a_server_starts_on_a_port_already_held_for_it(
    tmp_path: Path, settings: Settings, servers: LocalServers
) -> None:
    """No other process can take the port while the server loads its model: the runtime
    binds it first and the server inherits the listening socket."""
    settings = with_python(settings, stand_in(tmp_path, PING_SERVER))
    servers.apply(state(SPEC), settings, Lines())

    server = servers.server(DEPLOYMENT, "7")
    assert server is not None
    assert server.log_tail()[0] == f"port {server.port} is held"
    assert httpx.get(f"{server.url}/ping").status_code == 200


def test_a_server_that_died_is_started_again_by_the_next_apply(
    tmp_path: Path, settings: Settings, servers: LocalServers
) -> None:
    settings = with_python(settings, stand_in(tmp_path, PING_SERVER))
    log = Lines()
    servers.apply(state(SPEC), settings, log)
    first = servers.server(DEPLOYMENT, "7")
    assert first is not None
    first.process.kill()
    first.process.wait()

    assert not servers.is_alive(DEPLOYMENT, "7")
    assert servers.endpoints(DEPLOYMENT) == {}
    endpoints = servers.apply(state(SPEC), settings, log)

    second = servers.server(DEPLOYMENT, "7")
    assert second is not None
    assert second.process.pid != first.process.pid
    assert endpoints == {"7": second.url}
    assert httpx.get(f"{second.url}/ping").status_code == 200


def test_a_server_killed_while_starting_is_reported_as_killed(
    tmp_path: Path, settings: Settings, servers: LocalServers
) -> None:
    python = stand_in(tmp_path, "echo out of memory >&2; kill -KILL $$")

    with pytest.raises(RuntimeFailed) as failed:
        servers.apply(state(SPEC), with_python(settings, python), Lines())

    assert str(failed.value) == "model server for churn v7 was killed by SIGKILL: out of memory"


def test_an_interpreter_that_cannot_run_is_reported(
    tmp_path: Path, settings: Settings, servers: LocalServers
) -> None:
    missing = tmp_path / "no-python"

    with pytest.raises(RuntimeFailed, match=rf"could not start {missing}: No such file"):
        servers.apply(state(SPEC), with_python(settings, missing), Lines())


def test_no_free_port_in_the_range_is_reported(
    tmp_path: Path, settings: Settings, servers: LocalServers
) -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        narrow = with_python(settings, tmp_path / "unused", ports=(port, port))

        with pytest.raises(
            RuntimeFailed, match=rf"no free port for a model server in {port}-{port}"
        ):
            servers.apply(state(SPEC), narrow, Lines())


def test_the_local_runtime_lets_the_router_split_traffic() -> None:
    servers = LocalServers()
    runtime = local_runtime(servers)

    assert (runtime.name, runtime.splits_traffic) == ("local", False)
    assert runtime.apply == servers.apply
    assert runtime.remove == servers.remove

"""The local runtime: a model server process on this machine for each version a deployment
runs, on a loopback port, with Paved's router splitting the traffic between them."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import httpx

import plugins
from plugins.serving.runtimes import (
    DeploymentState,
    Log,
    RuntimeFailed,
    ServingRuntime,
    VersionSpec,
)
from portal import Settings
from portal.tracking import QUIET_MLFLOW

HOST = "127.0.0.1"
POLL_SECONDS = 0.1
PING_TIMEOUT = 1.0
STOP_GRACE_SECONDS = 5.0
LOG_TAIL_LINES = 20
BACKLOG = 2048  # uvicorn's own
# Where the ``plugins`` package lives: put on the model server's PYTHONPATH, so that an
# interpreter other than the portal's (``serving.python``) finds the module too.
PLUGINS_ROOT = str(Path(plugins.__file__).resolve().parent.parent)


@dataclass
class ModelServer:
    """One model server process: a version of a deployment on a loopback port."""

    deployment: str
    spec: VersionSpec
    port: int
    process: subprocess.Popen[bytes]
    log_path: Path
    log_offset: int  # the log's size when this process started: what it wrote comes after

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def label(self) -> str:
        return f"{self.spec.model} v{self.spec.version}"

    def is_alive(self) -> bool:
        return self.process.poll() is None

    def log_tail(self, lines: int = LOG_TAIL_LINES) -> list[str]:
        """The last non-blank lines this process wrote to its log."""
        try:
            with self.log_path.open("rb") as file:
                file.seek(self.log_offset)
                text = file.read().decode("utf-8", errors="replace")
        except OSError:
            return []
        return list(deque((line for line in text.splitlines() if line.strip()), maxlen=lines))


class LocalServers:
    """The model server processes of this portal process, one per (deployment, version).

    Make one per portal process and call ``stop_all()`` at shutdown: the servers are its
    children. Every method may be called from any thread; two ``apply`` of one deployment
    run one after the other, of different deployments side by side. ``apply`` blocks until
    the servers answer (seconds: each imports MLflow and loads its model), so call it from
    a task or a thread, not on the event loop.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()  # guards the two dicts and the flag below
        self._servers: dict[tuple[str, str], ModelServer] = {}
        self._deployment_locks: dict[str, threading.Lock] = {}
        self._closed = False

    def apply(self, state: DeploymentState, settings: Settings, log: Log) -> dict[str, str]:
        """Run a server for each version of ``state`` (the previous stable one too) and stop
        the deployment's others.

        Servers of versions that already run are kept; new ones start side by side, and
        the deployment's other servers stop only once all of them answer ``/ping``. A
        server that exits or stays silent for ``serving.start_timeout`` seconds raises
        ``RuntimeFailed``: the servers started by this call stop, the others keep running.
        Returns ``{version: url}``.
        """
        with self._deployment_lock(state.name):
            wanted = {spec.version: spec for spec in state.kept_warm}
            starting: list[ModelServer] = []
            try:
                for spec in wanted.values():
                    if self._running(state.name, spec.version) is None:
                        starting.append(self._start(state.name, spec, settings, log))
                self._wait_until_ready(starting, settings.serving.start_timeout, log)
                with self._lock:
                    if self._closed:
                        raise RuntimeFailed("the portal is stopping its model servers")
                    for server in starting:
                        self._servers[state.name, server.spec.version] = server
                    retired = [
                        self._servers.pop(key)
                        for key in list(self._servers)
                        if key[0] == state.name and key[1] not in wanted
                    ]
            except BaseException:
                _stop(starting, log)
                raise
            for server in starting:
                log(f"{server.label} answers at {server.url} (pid {server.process.pid})")
            _stop(retired, log)
            return self.endpoints(state.name)

    def remove(self, name: str, settings: Settings, log: Log) -> None:
        """Stop every server of the deployment ``name``."""
        with self._deployment_lock(name):
            with self._lock:
                servers = [self._servers.pop(key) for key in list(self._servers) if key[0] == name]
            _stop(servers, log)

    def stop_all(self) -> None:
        """Stop every server (at the portal's shutdown); ``apply`` fails from then on."""
        with self._lock:
            self._closed = True
            servers = list(self._servers.values())
            self._servers.clear()
        _stop(servers, lambda line: None)

    @property
    def is_closed(self) -> bool:
        return self._closed

    def is_alive(self, deployment: str, version: str) -> bool:
        """Whether the server of ``version`` runs (its process; not whether it answers)."""
        with self._lock:
            server = self._servers.get((deployment, version))
        return server is not None and server.is_alive()

    def endpoints(self, deployment: str) -> dict[str, str]:
        """``{version: url}`` of the deployment's servers whose process runs."""
        with self._lock:
            servers = [s for (name, _), s in self._servers.items() if name == deployment]
        return {server.spec.version: server.url for server in servers if server.is_alive()}

    def server(self, deployment: str, version: str) -> ModelServer | None:
        """The server of ``version`` (its process, port and log), if one was started."""
        with self._lock:
            return self._servers.get((deployment, version))

    def _deployment_lock(self, name: str) -> threading.Lock:
        with self._lock:
            return self._deployment_locks.setdefault(name, threading.Lock())

    def _running(self, deployment: str, version: str) -> ModelServer | None:
        """The live server of ``version``; a dead one (crashed) is reaped and forgotten."""
        with self._lock:
            server = self._servers.get((deployment, version))
            if server is None or server.is_alive():
                return server
            del self._servers[deployment, version]
        return None

    def _start(
        self, deployment: str, spec: VersionSpec, settings: Settings, log: Log
    ) -> ModelServer:
        # The parent binds the port and the server inherits the listening socket: no other
        # process can take the port in the seconds the server takes to load its model.
        with _listen_on_free_port(settings.serving.ports) as listener:
            return self._spawn(deployment, spec, listener, settings, log)

    def _spawn(
        self,
        deployment: str,
        spec: VersionSpec,
        listener: socket.socket,
        settings: Settings,
        log: Log,
    ) -> ModelServer:
        port = listener.getsockname()[1]
        folder = (settings.data_dir / "serving" / _path_part(deployment)).absolute()
        folder.mkdir(parents=True, exist_ok=True)
        log_path = folder / f"{_path_part(spec.version)}.log"
        python = str(settings.serving.python or sys.executable)
        command = [
            python,
            "-m",
            "plugins.serving.model_server",
            "--model-uri",
            spec.model_uri,
            "--fd",
            str(listener.fileno()),
        ]
        log(f"starting the model server of {spec.model} v{spec.version} on port {port}")
        # Appended to: what an earlier process of this version wrote stays for a post-mortem.
        with log_path.open("ab") as log_file:
            log_offset = log_file.tell()
            try:
                process = subprocess.Popen(
                    command,
                    env=_environment(settings),
                    stdin=subprocess.DEVNULL,
                    stdout=log_file,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,  # its own process group: Ctrl-C reaches the portal
                    pass_fds=(listener.fileno(),),
                )
            except OSError as exc:
                raise RuntimeFailed(
                    f"model server for {spec.model} v{spec.version} could not start "
                    f"{python}: {exc.strerror or exc}"
                ) from None
        return ModelServer(deployment, spec, port, process, log_path, log_offset)

    @staticmethod
    def _wait_until_ready(servers: list[ModelServer], timeout: float, log: Log) -> None:
        """Return once every server answers ``/ping`` with 200; raise ``RuntimeFailed`` for
        the first that exits, or when the time is up."""
        deadline = time.monotonic() + timeout
        waiting = list(servers)
        with httpx.Client(timeout=PING_TIMEOUT) as client:
            while waiting:
                for server in list(waiting):
                    status = server.process.poll()
                    if status is not None:
                        raise _failed(server, _ended(status), log)
                    if _answers_ping(client, server.url):
                        waiting.remove(server)
                if waiting and time.monotonic() > deadline:
                    raise _failed(waiting[0], f"did not answer /ping within {timeout:g} s", log)
                if waiting:
                    time.sleep(POLL_SECONDS)


def local_runtime(servers: LocalServers) -> ServingRuntime:
    """The ``local`` runtime backed by ``servers``."""
    return ServingRuntime(
        name="local",
        description="A model server process per version on the portal's machine; Paved's "
        "router splits the traffic",
        apply=servers.apply,
        remove=servers.remove,
        splits_traffic=False,
        restores=True,
    )


_by_data_dir: dict[Path, LocalServers] = {}
_by_data_dir_lock = threading.Lock()


def servers_for(settings: Settings) -> LocalServers:
    """This process's model servers of the portal whose data directory ``settings`` names
    (one per portal, even when a process runs several, as tests do)."""
    key = settings.data_dir.resolve()
    with _by_data_dir_lock:
        found = _by_data_dir.get(key)
        if found is None or found.is_closed:
            found = _by_data_dir[key] = LocalServers()
        return found


def stop_servers(settings: Settings) -> None:
    """Stop the model servers of the portal whose data directory ``settings`` names."""
    with _by_data_dir_lock:
        found = _by_data_dir.pop(settings.data_dir.resolve(), None)
    if found is not None:
        found.stop_all()


def _apply_for(state: DeploymentState, settings: Settings, log: Log) -> dict[str, str]:
    return servers_for(settings).apply(state, settings, log)


def _remove_for(name: str, settings: Settings, log: Log) -> None:
    servers_for(settings).remove(name, settings, log)


LOCAL = ServingRuntime(
    name="local",
    description="A model server process per version on the portal's machine; Paved's "
    "router splits the traffic",
    apply=_apply_for,
    remove=_remove_for,
    splits_traffic=False,
    restores=True,
)


def _environment(settings: Settings) -> dict[str, str]:
    """The portal's environment without its own settings (``PAVED_*``, secrets among
    them), pointed at its MLflow. The rest stays: artifact stores need their credentials."""
    env = {name: value for name, value in os.environ.items() if not name.startswith("PAVED_")}
    inherited_path = env.get("PYTHONPATH")
    python_path = f"{PLUGINS_ROOT}{os.pathsep}{inherited_path}" if inherited_path else PLUGINS_ROOT
    return env | {
        **QUIET_MLFLOW,
        "MLFLOW_TRACKING_URI": settings.tracking_uri,
        "MLFLOW_REGISTRY_URI": settings.tracking_uri,
        "PYTHONPATH": python_path,
        "PYTHONUNBUFFERED": "1",
    }


def _listen_on_free_port(ports: tuple[int, int]) -> socket.socket:
    """A listening socket on the first port of the range that nothing holds (the servers of
    this portal included: each holds its own)."""
    low, high = ports
    for port in range(low, high + 1):
        listener = socket.socket()
        # As uvicorn binds: a port whose old connections linger in TIME_WAIT is free.
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            listener.bind((HOST, port))
            listener.listen(BACKLOG)
        except OSError:
            listener.close()
            continue
        return listener
    raise RuntimeFailed(f"no free port for a model server in {low}-{high} (serving.ports)")


def _answers_ping(client: httpx.Client, url: str) -> bool:
    try:
        return client.get(f"{url}/ping").status_code == 200
    except httpx.TransportError:
        return False


def _ended(status: int) -> str:
    if status < 0:  # a signal: the kernel's OOM killer's SIGKILL, most often
        return f"was killed by {signal.Signals(-status).name}"
    return f"exited with status {status}"


def _failed(server: ModelServer, what: str, log: Log) -> RuntimeFailed:
    """The error of a server that would not start, its last line in the message; the
    lines before it go to ``log``."""
    tail = server.log_tail()
    for line in tail:
        log(f"{server.label} | {line}")
    last = f": {tail[-1].strip()}" if tail else f" (its log: {server.log_path})"
    return RuntimeFailed(f"model server for {server.label} {what}{last}")


def _stop(servers: Iterable[ModelServer], log: Log) -> None:
    """SIGTERM to each server's process group, SIGKILL to those still there after
    ``STOP_GRACE_SECONDS``; every process is reaped."""
    servers = list(servers)
    for server in servers:
        _signal(server, signal.SIGTERM)
    deadline = time.monotonic() + STOP_GRACE_SECONDS
    for server in servers:
        try:
            server.process.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            _signal(server, signal.SIGKILL)
            server.process.wait()
        log(f"stopped the model server of {server.label} (pid {server.process.pid})")


def _signal(server: ModelServer, sent: signal.Signals) -> None:
    if server.process.poll() is not None:
        return  # reaped: its pid may be another process's by now
    with contextlib.suppress(ProcessLookupError):  # gone already; wait() reaps it
        os.killpg(server.process.pid, sent)


def _path_part(name: str) -> str:
    """``name`` as one safe file name."""
    return re.sub(r"[^A-Za-z0-9._-]", "_", name).lstrip(".") or "_"

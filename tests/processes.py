"""Running Paved as separate processes, as people and CI do: the CLI and its environment."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import uvicorn

from portal.settings import Settings

PAVED = [sys.executable, "-m", "portal"]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def settings_env(settings: Settings) -> dict[str, str]:
    """The environment that points a ``paved`` process at a test's database."""
    return {
        "PAVED_DATABASE_URL": settings.sqlalchemy_url.render_as_string(hide_password=False),
        "PAVED_DATA_DIR": str(settings.data_dir),
        "PAVED_TASKS__POLL_INTERVAL": "0.05",
        # A test that wants MLflow's server beside `paved up` asks for it.
        "PAVED_MLFLOW__EMBEDDED_SERVER": "false",
    }


def paved(
    *args: str,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
    timeout: float = 60,
) -> subprocess.CompletedProcess[str]:
    """Run ``paved ARGS`` to completion and capture what it printed."""
    return subprocess.run(
        [*PAVED, *args],
        capture_output=True,
        text=True,
        env={**os.environ, "PAVED_LOG_FORMAT": "text", **(env or {})},
        cwd=cwd,
        timeout=timeout,
    )


def start_paved(
    *args: str, env: dict[str, str] | None = None, cwd: Path | None = None
) -> subprocess.Popen[str]:
    """Start ``paved ARGS`` in the background; the caller waits for it or stops it."""
    return subprocess.Popen(
        [*PAVED, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PAVED_LOG_FORMAT": "text", **(env or {})},
        cwd=cwd,
    )


@contextmanager
def serve_in_thread(app: Any, port: int | None = None) -> Iterator[str]:
    """Serve an ASGI app on a loopback port (a free one by default) in a thread; yields its
    base URL."""
    port = port or free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, access_log=False)
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "the server did not start"
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)

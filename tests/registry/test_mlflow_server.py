"""The embedded MLflow server `paved up` starts beside the portal: MLflow's UI and REST API on
the embedded store, with MLflow's job machinery turned off (it costs gigabytes)."""

from __future__ import annotations

import os
import time
from pathlib import Path

import httpx
import pytest

from portal.settings import Settings
from portal.tracking import EmbeddedServer, ui_url

from processes import free_port


@pytest.mark.slow
def test_the_embedded_server_serves_the_store_without_job_execution(
    settings: Settings, mlflow_store: Path
) -> None:
    settings = settings.model_copy(
        update={"mlflow": settings.mlflow.model_copy(update={"embedded_port": free_port()})}
    )
    server = EmbeddedServer(settings)
    server.start()
    try:
        assert server.process is not None
        environment = Path(f"/proc/{server.process.pid}/environ").read_bytes().split(b"\0")
        assert b"MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false" in environment
        url = ui_url(settings)
        assert url == f"http://127.0.0.1:{settings.mlflow.embedded_port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, (settings.mlflow_dir / "server.log").read_text()
            time.sleep(0.25)
        found = httpx.get(f"{url}/api/2.0/mlflow/experiments/search?max_results=10", timeout=5)
        assert found.status_code == 200
    finally:
        server.stop()
    assert server.process.poll() is not None
    with pytest.raises(ProcessLookupError):
        os.killpg(server.process.pid, 0)  # its workers went with it

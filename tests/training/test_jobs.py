"""Training jobs: a generated project trained by its own entry point, logged to MLflow with
its lineage, followed, cancelled, bounded, and refused with reasons."""

from __future__ import annotations

import subprocess
import threading
import time
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from plugins.training import local
from plugins.training.backends import TrainingBackend, TrainingOutcome, TrainingSpec
from plugins.training.service import available_backends
from portal import TaskContext
from portal.plugins import Plugins
from portal.settings import Settings
from portal.tracking import tracking_client
from portal.worker import Worker

from factories import throwaway_plugin, wait_for
from training.conftest import PROJECT, ProjectMaker


def job_log(client: TestClient, job_id: int) -> str:
    return "\n".join(
        line["message"] for line in client.get(f"/api/training/jobs/{job_id}/log").json()
    )


@pytest.mark.slow
def test_a_job_runs_the_projects_entry_point_and_links_its_mlflow_run(
    generated_project: str, alice: TestClient, trainer: Worker, settings: Settings
) -> None:
    submitted = alice.post(
        "/api/training/jobs",
        json={"project": generated_project, "parameters": {"algorithm": "random-forest"}},
    )
    assert submitted.status_code == 201, submitted.text
    job = submitted.json()
    assert job["status"] == "queued"
    assert job["command"][-4:] == ["--algorithm", "random-forest", "--seed", "42"] or (
        job["command"][-4:] == ["--seed", "42", "--algorithm", "random-forest"]
    )
    assert trainer.run_once()

    done = alice.get(f"/api/training/jobs/{job['id']}").json()
    assert done["status"] == "succeeded", job_log(alice, job["id"])
    run = tracking_client(settings).get_run(done["mlflow_run_id"])
    assert run.info.status == "FINISHED"
    assert run.data.params["algorithm"] == "random-forest"
    assert run.data.metrics["accuracy"] > 0.5
    # Lineage: the project, the commit it was trained from, the data, who asked.
    repository = settings.git_root / "fraud" / "churn-predictor.git"
    head = subprocess.run(
        ["git", f"--git-dir={repository}", "rev-parse", "HEAD"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    assert run.data.tags["mlflow.source.git.commit"] == head == done["revision"]
    assert run.data.tags["paved.project"] == PROJECT
    assert run.data.tags["paved.trained_on"] == "dataset:churn-predictor-sample"
    assert run.data.tags["mlflow.user"] == "user:default/alice"
    # Its output is in its log, and what it used is recorded for chargeback.
    assert f"run {done['mlflow_run_id']}" in job_log(alice, job["id"])
    assert done["usage"]["cpu_seconds"] > 0
    assert done["usage"]["max_memory_bytes"] > 0
    listed = alice.get(f"/api/training/jobs?project={PROJECT}").json()
    assert [item["id"] for item in listed] == [job["id"]]


def test_cancelling_a_running_job_stops_its_process(
    make_project: ProjectMaker, alice: TestClient, trainer: Worker, mlflow_store: Path,
    settings: Settings,
) -> None:  # fmt: skip
    project = make_project(
        "sleeper", "python -c \"import time; print('started', flush=True); time.sleep(120)\""
    )
    submitted = alice.post("/api/training/jobs", json={"project": project})
    assert submitted.status_code == 201, submitted.text
    job = submitted.json()
    worker = threading.Thread(target=trainer.run_once)
    worker.start()
    wait_for(lambda: "started" in job_log(alice, job["id"]))
    began = time.monotonic()
    cancelled = alice.post(f"/api/training/jobs/{job['id']}/cancel")
    assert cancelled.status_code == 200, cancelled.text
    worker.join(timeout=15)
    assert not worker.is_alive()
    assert time.monotonic() - began < 10
    done = alice.get(f"/api/training/jobs/{job['id']}").json()
    assert done["status"] == "cancelled"
    assert tracking_client(settings).get_run(done["mlflow_run_id"]).info.status == "KILLED"
    assert done["revision"] is None  # a plain folder: copied, no commit


def test_a_job_past_its_timeout_is_stopped_and_fails_saying_why(
    make_project: ProjectMaker, alice: TestClient, trainer: Worker, mlflow_store: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    # Its paved-project.yaml gives it 5 minutes; a minute lasts a fifth of a second here.
    monkeypatch.setattr(local, "SECONDS_A_MINUTE", 0.2)
    project = make_project(
        "stuck", "python -c \"import time; print('started', flush=True); time.sleep(120)\""
    )
    job = alice.post("/api/training/jobs", json={"project": project}).json()
    began = time.monotonic()
    assert trainer.run_once()

    assert time.monotonic() - began < 10
    done = alice.get(f"/api/training/jobs/{job['id']}").json()
    assert done["status"] == "failed"
    assert "stopped after its 5 minutes" in done["error"]
    assert "started" in job_log(alice, job["id"])


def test_a_job_over_its_memory_is_stopped_and_fails_saying_why(
    make_project: ProjectMaker, alice: TestClient, trainer: Worker, mlflow_store: Path
) -> None:
    project = make_project(
        "glutton", "python -c \"print('allocating', flush=True); x = bytearray(2 << 30)\"",
        memory="512Mi",
    )  # fmt: skip
    job = alice.post("/api/training/jobs", json={"project": project}).json()
    assert trainer.run_once()
    done = alice.get(f"/api/training/jobs/{job['id']}").json()
    assert done["status"] == "failed"
    assert "exited with status 1" in done["error"]
    assert "MemoryError" in job_log(alice, job["id"])


def test_bad_training_requests_name_the_field(
    make_project: ProjectMaker, alice: TestClient
) -> None:
    project = make_project("tiny", "python -c 'print(1)'")
    cases = {
        "project": {"project": "component:default/nothing-here"},
        "parameters.bad name": {"project": project, "parameters": {"bad name": 1}},
        "backend": {"project": project, "backend": "slurm"},
    }
    for field, body in cases.items():
        answered = alice.post("/api/training/jobs", json=body)
        if field == "project":
            assert answered.status_code == 404, answered.text
            continue
        assert answered.status_code == 422, answered.text
        assert answered.json()["errors"][0]["field"] == field
    group = alice.post("/api/training/jobs", json={"project": "group:default/fraud"})
    assert group.status_code == 422
    assert group.json()["errors"][0]["expected"] == "a Component or Model"
    assert alice.get("/api/training/jobs").json() == []  # nothing was queued


def test_a_person_outside_the_owning_team_may_not_train_it(
    make_project: ProjectMaker, bob: TestClient
) -> None:
    project = make_project("fraud-only", "python -c 'print(1)'")
    refused = bob.post("/api/training/jobs", json={"project": project})
    assert refused.status_code == 403
    assert "group:default/fraud" in " ".join(refused.json()["reasons"])


def test_a_plugin_adds_a_training_backend_and_a_taken_name_degrades_its_plugin(
    app: FastAPI, plugins: Plugins, make_project: ProjectMaker, alice: TestClient,
    trainer: Worker, mlflow_store: Path,
) -> None:  # fmt: skip
    ran: list[TrainingSpec] = []

    def run(spec: TrainingSpec, ctx: TaskContext, _settings: Settings) -> TrainingOutcome:
        ran.append(spec)
        ctx.log("queued on the cluster")
        return TrainingOutcome(exit_code=0, usage={"gpu_seconds": 60.0})

    queue = TrainingBackend("slurm", "A Slurm queue", run)
    impostor = TrainingBackend("local", "Another local runner", run)
    with (
        throwaway_plugin(plugins, "slurm", paved_training_backends=lambda: [queue]),
        throwaway_plugin(plugins, "zz_impostor", paved_training_backends=lambda: [impostor]),
    ):
        backends = available_backends(plugins)
        app.state.training_backends = backends  # as the portal's start-up collects them
        assert backends["slurm"] is queue
        assert backends["local"] is not impostor
        assert plugins.records["zz_impostor"].status == "degraded"  # "training" came first
        project = make_project("on-slurm", "python train.py")
        job = alice.post("/api/training/jobs", json={"project": project, "backend": "slurm"})
        assert job.status_code == 201, job.text
        assert trainer.run_once()
    done = alice.get(f"/api/training/jobs/{job.json()['id']}").json()
    assert done["status"] == "succeeded"
    assert done["usage"] == {"gpu_seconds": 60.0}
    assert ran[0].command == ["python", "train.py"]
    assert ran[0].team == "fraud"
    assert ran[0].env["MLFLOW_RUN_ID"] == done["mlflow_run_id"]
    assert "queued on the cluster" in job_log(alice, done["id"])


def test_the_train_button_queues_a_job_and_opens_its_page(
    make_project: ProjectMaker, alice: TestClient
) -> None:
    project = make_project("buttoned", "python train.py --epochs 1")
    tab = alice.get("/training/tabs/component/default/buttoned")
    assert tab.status_code == 200
    assert f'name="project" value="{project}"' in tab.text
    assert "python train.py --epochs 1" in tab.text

    pressed = alice.post("/training/jobs", data={"project": project}, follow_redirects=False)
    assert pressed.status_code == 303
    job_id = int(pressed.headers["location"].rsplit("/", 1)[-1])
    page = alice.get(pressed.headers["location"])
    assert page.status_code == 200
    assert "Cancel job" in page.text
    assert (
        f'data-follow="/api/tasks/{alice.get(f"/api/training/jobs/{job_id}").json()["task_id"]}/events"'
        in page.text
    )
    missing = alice.post("/training/jobs", data={}, follow_redirects=False)
    assert missing.status_code == 422

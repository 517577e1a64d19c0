"""The Kubernetes training backend: its Job manifest, and a run followed to its end.

No cluster runs on this machine, so the Kubernetes API here is a fake: kmock's
``KubernetesEmulator``, an in-memory API server on a loopback port that stores what is
created, patched and deleted. It runs no controllers, so the tests play the Job controller
and the kubelet with reactions: a Job reported as finished, a pod, its log. kmock's pytest
plugin needs pytest-asyncio, which Paved does not use: the emulator runs in a thread with
its own event loop instead (``FakeApiServer``).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import kmock
import pytest
from kubernetes_api import FakeApiServer

from plugins.training import kubernetes as backend
from plugins.training.backends import Resources, TrainingSpec
from portal import TaskCancelled, TaskFailed
from portal.settings import Settings, load_settings

JOBS = kmock.resource("batch", "v1", "jobs")
PODS = kmock.resource("", "v1", "pods")
NAMESPACE = "team-fraud"
JOB = "paved-train-7"


class FakeTaskContext:
    """A stand-in for the worker's TaskContext: collects log lines, and asks for cancel
    from the ``cancel_after``-th check on (never when None)."""

    def __init__(self, settings: Settings, *, cancel_after: int | None = None) -> None:
        self.task_id = 1
        self.settings = settings
        self.lines: list[str] = []
        self.cancel_after = cancel_after
        self.checks = 0

    def log(self, message: str, **details: Any) -> None:
        self.lines.append(message)

    def is_cancel_requested(self) -> bool:
        self.checks += 1
        return self.cancel_after is not None and self.checks >= self.cancel_after


@pytest.fixture(scope="module", autouse=True)
def _client_imported() -> None:
    """The client's API classes take about 2 s to load, once per process: paid here rather
    than by whichever test first creates a Job."""
    from kubernetes import client

    client.BatchV1Api, client.CoreV1Api, client.V1Job.model_validate({})


@pytest.fixture
def api_server(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeApiServer]:
    monkeypatch.setattr(backend, "POLL_SECONDS", 0.01)
    with FakeApiServer(("batch/v1/jobs", "v1/pods")) as server:
        yield server


@pytest.fixture
def k8s_settings(tmp_path: Path, api_server: FakeApiServer) -> Settings:
    return load_settings(
        data_dir=tmp_path,
        kubernetes={
            "api_url": api_server.url,
            "image": "registry.example.com/ml-runtime:1.4",
            "ttl_seconds_after_finished": 600,
        },
    )


def make_spec(**changes: Any) -> TrainingSpec:
    fields: dict[str, Any] = {
        "job_id": 7,
        "project": "component:default/fraud-detector",
        "owner": "group:default/fraud",
        "source": "https://git.example.com/fraud/detector.git",
        "revision": "3f2c1e0a9b8d",
        "command": ["python", "train.py", "--epochs", "3"],
        "env": {
            "MLFLOW_TRACKING_URI": "http://mlflow.mlops.svc:5000",
            "MLFLOW_RUN_ID": "a1b2c3",
            "PAVED_JOB_ID": "7",
        },
        "resources": Resources(cpu="2", memory="4Gi"),
        "timeout_minutes": 30,
        "labels": {"paved.dev/job": "7", "paved.dev/team": "fraud"},
    }
    return TrainingSpec(**(fields | changes))


def add_pod(server: FakeApiServer, *, status: dict[str, Any], log: bytes = b"") -> None:
    """The pod the Job controller would make, in ``status``, answering ``log``."""
    name = f"{JOB}-x7k2p"
    server.emulator.objects[PODS, NAMESPACE, name] = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "namespace": NAMESPACE,
            "labels": {"job-name": JOB, "batch.kubernetes.io/job-name": JOB},
        },
        "status": status,
    }
    server.emulator[kmock.action.FETCH, PODS, kmock.subresource("log")] << log


def report_job_status(server: FakeApiServer, status: dict[str, Any]) -> None:
    """Answer reads of a stored Job with ``status``, as the Job controller would set it."""

    def read(request: kmock.Request) -> dict[str, Any]:
        key = (JOBS, request.namespace, request.name)
        if key not in server.emulator.objects or server.emulator.objects[key].deleted:
            raise kmock.KubernetesObjectNotFoundError()
        return {**server.emulator.objects[key].raw, "status": status}

    server.emulator[kmock.action.FETCH, JOBS, kmock.subresource(None)] << read


def container(name: str, value: str) -> dict[str, Any]:
    return {"name": name, "value": value}


# -- The manifest --------------------------------------------------------------------------


def test_job_runs_the_commit_in_the_team_namespace(k8s_settings: Settings) -> None:
    job = backend.job_manifest(make_spec(), k8s_settings)

    assert job["apiVersion"] == "batch/v1"
    assert job["kind"] == "Job"
    assert job["metadata"]["name"] == JOB
    assert job["metadata"]["namespace"] == NAMESPACE
    assert job["spec"]["backoffLimit"] == 0
    assert job["spec"]["activeDeadlineSeconds"] == 30 * 60
    assert job["spec"]["ttlSecondsAfterFinished"] == 600
    pod = job["spec"]["template"]["spec"]
    assert pod["restartPolicy"] == "Never"
    assert pod["automountServiceAccountToken"] is False
    [train] = pod["containers"]
    assert train["image"] == "registry.example.com/ml-runtime:1.4"
    # The repository, commit and command are arguments of the script, never shell text.
    assert train["command"] == ["sh", "-c", backend.CLONE_AND_RUN, "paved-train"]
    assert train["args"] == [
        "https://git.example.com/fraud/detector.git",
        "3f2c1e0a9b8d",
        "python",
        "train.py",
        "--epochs",
        "3",
    ]
    assert 'git clone --quiet "$1" /workspace' in backend.CLONE_AND_RUN
    assert 'git -C /workspace checkout --quiet "$2"' in backend.CLONE_AND_RUN
    assert backend.CLONE_AND_RUN.endswith('cd /workspace; exec "$@"')
    assert train["volumeMounts"] == [{"name": "workspace", "mountPath": "/workspace"}]
    assert container("MLFLOW_RUN_ID", "a1b2c3") in train["env"]
    assert container("MLFLOW_TRACKING_URI", "http://mlflow.mlops.svc:5000") in train["env"]
    assert container("PYTHONUNBUFFERED", "1") in train["env"]
    assert container("OMP_NUM_THREADS", "2") in train["env"]
    assert train["resources"] == {
        "requests": {"cpu": "2", "memory": "4Gi"},
        "limits": {"cpu": "2", "memory": "4Gi"},
    }
    assert "tolerations" not in pod


def test_job_is_labelled_for_its_owner_and_cost_attribution(k8s_settings: Settings) -> None:
    job = backend.job_manifest(make_spec(), k8s_settings)

    expected = {
        "app.kubernetes.io/managed-by": "paved",
        "app.kubernetes.io/component": "training",
        "paved.dev/job": "7",
        "paved.dev/team": "fraud",
        "paved.dev/owner": "group-default-fraud",
        "paved.dev/project": "component-default-fraud-detector",
        "paved.dev/cost-center": "fraud",
    }
    assert job["metadata"]["labels"] == expected
    assert job["spec"]["template"]["metadata"]["labels"] == expected
    assert job["metadata"]["annotations"]["paved.dev/project-ref"] == (
        "component:default/fraud-detector"
    )


def test_a_long_project_name_becomes_a_valid_label_value(k8s_settings: Settings) -> None:
    spec = make_spec(project="component:default/" + "very-long-name_" * 8)

    value = backend.job_labels(spec)["paved.dev/project"]

    assert len(value) <= 63
    assert value[0].isalnum()
    assert value[-1].isalnum()
    assert set(value) <= set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.")


def test_gpus_are_limits_and_their_taint_is_tolerated(k8s_settings: Settings) -> None:
    spec = make_spec(resources=Resources(cpu="8", memory="32Gi", gpu=2))

    pod = backend.job_manifest(spec, k8s_settings)["spec"]["template"]["spec"]

    assert pod["containers"][0]["resources"] == {
        "requests": {"cpu": "8", "memory": "32Gi"},
        "limits": {"cpu": "8", "memory": "32Gi", "nvidia.com/gpu": "2"},
    }
    assert pod["tolerations"] == [
        {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}
    ]


def test_namespace_follows_the_setting(tmp_path: Path) -> None:
    settings = load_settings(data_dir=tmp_path, kubernetes={"namespace": "ml-{team}-jobs"})

    job = backend.job_manifest(make_spec(owner="group:default/Search_Ranking"), settings)

    assert job["metadata"]["namespace"] == "ml-search-ranking-jobs"


# -- A run against the fake API server ----------------------------------------------------


def test_run_creates_the_job_and_reports_its_success(
    api_server: FakeApiServer, k8s_settings: Settings
) -> None:
    spec = make_spec()
    add_pod(
        api_server,
        status={"phase": "Succeeded"},
        log=b"2025-01-02T03:04:05.1Z epoch 1 loss 0.41\n"
        b"2025-01-02T03:04:05.1Z epoch 2 loss 0.22\n"
        b"2025-01-02T03:04:06Z done\n",
    )
    report_job_status(
        api_server,
        {"succeeded": 1, "conditions": [{"type": "Complete", "status": "True"}]},
    )
    ctx = FakeTaskContext(k8s_settings)

    outcome = backend.run_on_kubernetes(spec, ctx, k8s_settings)  # type: ignore[arg-type]

    [created] = api_server.requests(kmock.action.CREATE, JOBS)
    assert created.namespace == NAMESPACE
    assert created.data == backend.job_manifest(spec, k8s_settings)
    assert api_server.emulator.objects[JOBS, NAMESPACE, JOB] == created.data
    assert outcome.exit_code == 0
    assert outcome.message is None
    seconds = outcome.usage["seconds"]
    assert outcome.usage["cpu_seconds"] == pytest.approx(2 * seconds, abs=0.01)
    assert outcome.usage["gpu_seconds"] == 0
    assert outcome.usage["max_memory_bytes"] == 4 * 2**30
    assert [line for line in ctx.lines if line.startswith(("epoch", "done"))] == [
        "epoch 1 loss 0.41",
        "epoch 2 loss 0.22",
        "done",
    ]
    assert not api_server.requests(kmock.action.DELETE, JOBS)


def test_a_failed_job_returns_its_container_exit_code(
    api_server: FakeApiServer, k8s_settings: Settings
) -> None:
    add_pod(
        api_server,
        status={
            "phase": "Failed",
            "containerStatuses": [
                {"name": "train", "state": {"terminated": {"exitCode": 3, "reason": "Error"}}}
            ],
        },
        log=b"Traceback (most recent call last):\nValueError: no rows\n",
    )
    report_job_status(
        api_server,
        {
            "failed": 1,
            "conditions": [{"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded"}],
        },
    )
    ctx = FakeTaskContext(k8s_settings)

    outcome = backend.run_on_kubernetes(make_spec(), ctx, k8s_settings)  # type: ignore[arg-type]

    assert outcome.exit_code == 3
    assert "ValueError: no rows" in ctx.lines


def test_a_job_past_its_deadline_fails_with_exit_code_1(
    api_server: FakeApiServer, k8s_settings: Settings
) -> None:
    report_job_status(
        api_server,
        {
            "failed": 1,
            "conditions": [{"type": "Failed", "status": "True", "reason": "DeadlineExceeded"}],
        },
    )
    ctx = FakeTaskContext(k8s_settings)

    outcome = backend.run_on_kubernetes(make_spec(), ctx, k8s_settings)  # type: ignore[arg-type]

    assert outcome.exit_code == 1
    assert outcome.message == "stopped after its 30 minutes"


def test_cancel_deletes_the_job(api_server: FakeApiServer, k8s_settings: Settings) -> None:
    report_job_status(api_server, {"active": 1})  # still running when cancelled
    ctx = FakeTaskContext(k8s_settings, cancel_after=3)

    with pytest.raises(TaskCancelled):
        backend.run_on_kubernetes(make_spec(), ctx, k8s_settings)  # type: ignore[arg-type]

    [deleted] = api_server.requests(kmock.action.DELETE, JOBS)
    assert (deleted.namespace, deleted.name) == (NAMESPACE, JOB)
    assert deleted.params["propagationPolicy"] == "Background"
    assert api_server.emulator.objects[JOBS, NAMESPACE, JOB].deleted
    assert len(api_server.requests(kmock.action.FETCH, JOBS)) == 2  # followed until cancelled


def test_forbidden_create_fails_the_task_with_the_api_message(
    api_server: FakeApiServer, k8s_settings: Settings
) -> None:
    message = (
        'jobs.batch is forbidden: User "system:serviceaccount:paved:portal" cannot create '
        'resource "jobs" in API group "batch" in the namespace "team-fraud"'
    )
    (
        api_server.emulator[kmock.action.CREATE, JOBS]
        << 403
        << {
            "apiVersion": "v1",
            "kind": "Status",
            "status": "Failure",
            "reason": "Forbidden",
            "code": 403,
            "message": message,
        }
    )
    ctx = FakeTaskContext(k8s_settings)

    with pytest.raises(TaskFailed) as failed:
        backend.run_on_kubernetes(make_spec(), ctx, k8s_settings)  # type: ignore[arg-type]

    assert (
        str(failed.value) == f"cannot create Job team-fraud/paved-train-7: 403 Forbidden: {message}"
    )


def test_an_image_that_cannot_be_pulled_fails_the_task_and_deletes_the_job(
    api_server: FakeApiServer, k8s_settings: Settings
) -> None:
    report_job_status(api_server, {"active": 1})
    waiting = {"reason": "ImagePullBackOff", "message": 'Back-off pulling image "ml-runtime:1.4"'}
    add_pod(
        api_server,
        status={
            "phase": "Pending",
            "containerStatuses": [
                {
                    "name": "train",
                    "image": "registry.example.com/ml-runtime:1.4",
                    "state": {"waiting": waiting},
                }
            ],
        },
    )
    ctx = FakeTaskContext(k8s_settings)

    with pytest.raises(TaskFailed, match="ImagePullBackOff: Back-off pulling image") as failed:
        backend.run_on_kubernetes(make_spec(), ctx, k8s_settings)  # type: ignore[arg-type]

    assert "registry.example.com/ml-runtime:1.4" in str(failed.value)
    assert api_server.emulator.objects[JOBS, NAMESPACE, JOB].deleted


def test_a_job_left_by_an_earlier_attempt_is_replaced(
    api_server: FakeApiServer, k8s_settings: Settings
) -> None:
    labels = backend.job_labels(make_spec())
    api_server.emulator.objects[JOBS, NAMESPACE, JOB] = {
        "metadata": {"name": JOB, "labels": labels},
        "spec": {},
    }
    report_job_status(api_server, {"succeeded": 1})
    ctx = FakeTaskContext(k8s_settings)

    outcome = backend.run_on_kubernetes(make_spec(), ctx, k8s_settings)  # type: ignore[arg-type]

    assert outcome.exit_code == 0
    assert len(api_server.requests(kmock.action.CREATE, JOBS)) == 2
    assert len(api_server.requests(kmock.action.DELETE, JOBS)) == 1
    assert api_server.emulator.objects[JOBS, NAMESPACE, JOB] == backend.job_manifest(
        make_spec(), k8s_settings
    )


def test_a_job_of_the_same_name_from_elsewhere_is_left_alone(
    api_server: FakeApiServer, k8s_settings: Settings
) -> None:
    other = {"metadata": {"name": JOB, "labels": {"paved.dev/project": "someone-else"}}}
    api_server.emulator.objects[JOBS, NAMESPACE, JOB] = other
    ctx = FakeTaskContext(k8s_settings)

    with pytest.raises(TaskFailed, match="already exists and is not this job's"):
        backend.run_on_kubernetes(make_spec(), ctx, k8s_settings)  # type: ignore[arg-type]

    assert not api_server.requests(kmock.action.DELETE, JOBS)
    assert not api_server.emulator.objects[JOBS, NAMESPACE, JOB].deleted


def test_a_project_folder_cannot_run_in_the_cluster(
    api_server: FakeApiServer, k8s_settings: Settings
) -> None:
    spec = make_spec(source="/srv/projects/fraud-detector", revision=None)

    with pytest.raises(TaskFailed, match="expected a git repository URL"):
        backend.run_on_kubernetes(spec, FakeTaskContext(k8s_settings), k8s_settings)  # type: ignore[arg-type]

    assert not api_server.requests(kmock.action.CREATE, JOBS)

"""The Kubernetes backend: a job's project cloned and run as a Job in its team's namespace,
with the requests and limits its project file asks for, its pod's log followed live.

One container does everything: it clones the repository at the job's commit into an
``emptyDir`` at ``/workspace`` and runs the entry point there. An init container would need
a second image (git) to configure and keep patched, and its clone output would sit in a log
no one follows; the ``kubernetes.image`` setting already promises git ("clones a project
and runs it"). The repository, commit and command reach ``sh`` as positional arguments,
never as shell text, so no value in a project file is ever parsed by the shell.

The portal's service account needs, in each team namespace: ``create``, ``get`` and
``delete`` on ``jobs`` (batch), ``list`` and ``get`` on ``pods``, ``get`` on ``pods/log``.
"""

from __future__ import annotations

import math
import re
import threading
import time
from typing import TYPE_CHECKING, Any

from plugins.training.backends import TrainingBackend, TrainingOutcome, TrainingSpec
from portal import Settings, TaskCancelled, TaskContext, TaskFailed
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

WORKSPACE = "/workspace"
CONTAINER = "train"
# The container's ``sh -c`` script; $1 is the repository, $2 the commit, the rest the command.
CLONE_AND_RUN = (
    "set -eu; "
    f'git clone --quiet "$1" {WORKSPACE}; '
    f'git -C {WORKSPACE} checkout --quiet "$2"; '
    "shift 2; "
    f"cd {WORKSPACE}; "
    'exec "$@"'
)
THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
POLL_SECONDS = 2.0
# The Job's activeDeadlineSeconds stops it; this backstop only covers a cluster that did not.
DEADLINE_GRACE_SECONDS = 60.0
# How long a finished job's last log lines may take to arrive before the outcome is returned.
LOG_DRAIN_SECONDS = 10.0
# A followed log silent this long is asked for again (lines already forwarded are skipped).
LOG_READ_TIMEOUT = 300.0
# Waiting reasons a pod does not recover from by itself.
STUCK_REASONS = {
    "ImagePullBackOff",
    "ErrImageNeverPull",
    "InvalidImageName",
    "CreateContainerConfigError",
    "CreateContainerError",
}
TERMINAL_PHASES = {"Succeeded", "Failed"}
# A line of a log read with timestamps=true: RFC3339 (nano) time, a space, the line.
STAMPED = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d{1,9}))?Z ")
# Addresses the portal reaches but a pod does not (the portal's machine, its files).
LOCAL_ADDRESS = re.compile(r"^(sqlite|file):|^https?://(localhost|127\.|\[::1\])|^/|^\.")


def job_name(spec: TrainingSpec) -> str:
    return f"paved-train-{spec.job_id}"


def job_labels(spec: TrainingSpec) -> dict[str, str]:
    """Who the Job is for, on the Job and its pod: for selection and cost attribution."""
    team = sanitize_label_value(spec.team)
    given = {key: sanitize_label_value(value) for key, value in spec.labels.items()}
    return given | {
        **MANAGED_BY,
        "app.kubernetes.io/component": "training",
        "paved.dev/job": str(spec.job_id),
        "paved.dev/team": team,
        "paved.dev/owner": sanitize_label_value(spec.owner),
        "paved.dev/project": sanitize_label_value(spec.project),
        "paved.dev/cost-center": team,
    }


def job_manifest(spec: TrainingSpec, settings: Settings) -> dict[str, Any]:
    """The batch/v1 Job that runs ``spec`` once, in its team's namespace."""
    labels = job_labels(spec)
    annotations = {"paved.dev/project-ref": spec.project, "paved.dev/owner-ref": spec.owner}
    if spec.revision:
        annotations["paved.dev/revision"] = spec.revision
    quantities = {"cpu": spec.resources.cpu, "memory": spec.resources.memory}
    limits = dict(quantities)
    pod: dict[str, Any] = {
        "restartPolicy": "Never",
        # The entry point has no business with the cluster's API.
        "automountServiceAccountToken": False,
        "containers": [
            {
                "name": CONTAINER,
                "image": settings.kubernetes.image,
                "command": ["sh", "-c", CLONE_AND_RUN, "paved-train"],
                "args": [spec.source, spec.revision or "HEAD", *spec.command],
                "env": [
                    {"name": name, "value": value}
                    for name, value in sorted(_environment(spec).items())
                ],
                "resources": {"requests": quantities, "limits": limits},
                "volumeMounts": [{"name": "workspace", "mountPath": WORKSPACE}],
            }
        ],
        "volumes": [{"name": "workspace", "emptyDir": {}}],
    }
    if spec.resources.gpu > 0:
        limits["nvidia.com/gpu"] = str(spec.resources.gpu)
        # GPU nodes are usually tainted so that only pods asking for GPUs land there.
        pod["tolerations"] = [
            {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}
        ]
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": job_name(spec),
            "namespace": namespace_for(settings, spec.team),
            "labels": labels,
            "annotations": annotations,
        },
        "spec": {
            "backoffLimit": 0,  # a failed run is reported, not silently run again
            "activeDeadlineSeconds": spec.timeout_minutes * 60,
            "ttlSecondsAfterFinished": settings.kubernetes.ttl_seconds_after_finished,
            "template": {
                "metadata": {"labels": labels, "annotations": annotations},
                "spec": pod,
            },
        },
    }


def _environment(spec: TrainingSpec) -> dict[str, str]:
    """As the local runner gives it: unbuffered output, the project on the path, one
    numerical thread per CPU asked for; then the job's own (MLflow's run) on top."""
    threads = str(max(1, math.ceil(spec.resources.cpus)))
    env = dict.fromkeys(THREAD_VARIABLES, threads)
    env |= {
        "PYTHONUNBUFFERED": "1",
        "PYTHONPATH": f"{WORKSPACE}/src:{WORKSPACE}",
        "GIT_TERMINAL_PROMPT": "0",  # a private repository fails instead of waiting for input
        "MLFLOW_DISABLE_TELEMETRY": "true",
        "DO_NOT_TRACK": "true",
    }
    return env | spec.env


def run_on_kubernetes(spec: TrainingSpec, ctx: TaskContext, settings: Settings) -> TrainingOutcome:
    """Run ``spec`` as a Job and follow it to its end (the ``TrainingBackend`` contract)."""
    if spec.revision is None or LOCAL_ADDRESS.match(spec.source):
        raise TaskFailed(
            f"the kubernetes backend clones the project in the cluster, which cannot reach "
            f"{spec.source!r}; expected a git repository URL (https://, ssh:// or git@host:) "
            "with a commit"
        )
    tracking = spec.env.get("MLFLOW_TRACKING_URI", "")
    if LOCAL_ADDRESS.match(tracking):
        ctx.log(
            f"MLflow's tracking URI {tracking!r} is on the portal's machine: the job cannot "
            "log to it from the cluster (set mlflow.tracking_uri to a server it reaches)",
            level="warning",
        )
    manifest = job_manifest(spec, settings)
    try:
        api = api_client(settings)
    except ConfigurationError as exc:
        raise TaskFailed(str(exc)) from None
    with api:
        return _JobRun(api, manifest, spec, ctx).follow()


class _JobRun:
    """One Job, from its creation to its end."""

    def __init__(
        self, api: ApiClient, manifest: dict[str, Any], spec: TrainingSpec, ctx: TaskContext
    ) -> None:
        from kubernetes import client

        self.batch = client.BatchV1Api(api)
        self.core = client.CoreV1Api(api)
        self.spec = spec
        self.ctx = ctx
        self.manifest = manifest
        # The client's own model, validated against the API's schema before anything is sent.
        self.job = client.V1Job.model_validate(manifest)
        self.name: str = manifest["metadata"]["name"]
        self.namespace: str = manifest["metadata"]["namespace"]
        self.shown = f"Job {self.namespace}/{self.name}"
        self.errors = api_error_types()
        self.last_waiting: str | None = None

    def follow(self) -> TrainingOutcome:
        self.create()
        started = time.monotonic()
        follower = _LogFollower(self, self.ctx)
        follower.start()
        try:
            exit_code, message = self.wait(started)
        except BaseException:
            follower.finish(0)  # cancelled or failed: its last lines no longer matter
            raise
        follower.finish(LOG_DRAIN_SECONDS)
        seconds = time.monotonic() - started
        resources = self.spec.resources
        return TrainingOutcome(
            exit_code=exit_code,
            # What the Job reserved, not what it used: chargeback bills the requests (which
            # also are its limits), and no metrics server is asked for measured use.
            usage={
                "seconds": round(seconds, 3),
                "cpu_seconds": round(resources.cpus * seconds, 3),
                "gpu_seconds": round(resources.gpu * seconds, 3),
                "max_memory_bytes": float(resources.memory_bytes),
            },
            message=message,
        )

    def create(self) -> None:
        image = self.manifest["spec"]["template"]["spec"]["containers"][0]["image"]
        try:
            self.batch.create_namespaced_job(
                self.namespace, self.job, _request_timeout=REQUEST_TIMEOUT
            )
        except self.errors as exc:
            if not is_status(exc, 409):
                raise TaskFailed(f"cannot create {self.shown}: {describe_api_error(exc)}") from None
            self.check_earlier_attempt()
            # A Job of an earlier attempt of this task (its worker died): it logs to an MLflow
            # run this attempt no longer follows, so it is replaced, not adopted.
            self.ctx.log(f"{self.shown} exists from an earlier attempt; replacing it")
            self.delete()
            self.create_again()
        self.ctx.log(f"created {self.shown} (image {image})")

    def check_earlier_attempt(self) -> None:
        """Refuse to replace a Job of the same name that is not this job's (another portal
        sharing the namespace, say): it must carry this job's labels."""
        try:
            existing = read_json(self.batch.read_namespaced_job, self.name, self.namespace)
        except self.errors as exc:
            if is_status(exc, 404):
                return  # gone in the meantime
            raise TaskFailed(f"cannot read {self.shown}: {describe_api_error(exc)}") from None
        if not has_labels(existing, self.manifest["metadata"]["labels"]):
            raise TaskFailed(
                f"{self.shown} already exists and is not this job's (its labels differ); "
                "expected kubernetes.namespace to give this portal namespaces of its own"
            )

    def create_again(self) -> None:
        until = time.monotonic() + 30
        while True:
            try:
                self.batch.create_namespaced_job(
                    self.namespace, self.job, _request_timeout=REQUEST_TIMEOUT
                )
                return
            except self.errors as exc:
                if not is_status(exc, 409) or time.monotonic() > until:
                    raise TaskFailed(
                        f"cannot create {self.shown}: {describe_api_error(exc)}"
                    ) from None
            time.sleep(POLL_SECONDS)  # the old Job is still being deleted

    def wait(self, started: float) -> tuple[int, str | None]:
        """Poll until the Job ends; its exit code and why, when it did not end by itself."""
        deadline = started + self.spec.timeout_minutes * 60 + DEADLINE_GRACE_SECONDS
        while True:
            if self.ctx.is_cancel_requested():
                self.delete()
                self.ctx.log(f"cancelled: deleted {self.shown}")
                raise TaskCancelled
            ending = self.ending(self.read_job())
            if ending is not None:
                return ending
            self.check_pods()
            if time.monotonic() > deadline:
                self.delete()
                return 1, f"stopped after its {self.spec.timeout_minutes} minutes"
            time.sleep(POLL_SECONDS)

    def read_job(self) -> dict[str, Any]:
        try:
            return read_json(self.batch.read_namespaced_job, self.name, self.namespace)
        except self.errors as exc:
            if is_status(exc, 404):
                raise TaskFailed(f"{self.shown} was deleted by someone else") from None
            raise TaskFailed(f"cannot read {self.shown}: {describe_api_error(exc)}") from None

    def ending(self, job: dict[str, Any]) -> tuple[int, str | None] | None:
        """How the Job ended (exit code, message), or None while it runs."""
        status = job.get("status") or {}
        true = {
            condition.get("type"): condition
            for condition in status.get("conditions") or []
            if condition.get("status") == "True"
        }
        if "Complete" in true or (status.get("succeeded") or 0) > 0:
            return 0, None
        failed = true.get("Failed")
        if failed is None and not (status.get("failed") or 0) > 0:
            return None
        if failed is not None and failed.get("reason") == "DeadlineExceeded":
            return 1, f"stopped after its {self.spec.timeout_minutes} minutes"
        exit_code, reason = self.termination()
        if reason == "OOMKilled":
            return exit_code or 1, f"killed for using more than its {self.spec.resources.memory}"
        if exit_code:
            return exit_code, None  # the job's service says "exited with status N"
        why = failed.get("message") or failed.get("reason") if failed is not None else None
        return 1, str(why or "failed without saying why")

    def termination(self) -> tuple[int | None, str | None]:
        """The training container's exit code and reason, when its pod says."""
        for pod in self.list_pods():
            for container in (pod.get("status") or {}).get("containerStatuses") or []:
                terminated = (container.get("state") or {}).get("terminated")
                if container.get("name") == CONTAINER and terminated:
                    return terminated.get("exitCode"), terminated.get("reason")
        return None, None

    def check_pods(self) -> None:
        """Fail on a pod that will never start (a bad image); say why one waits."""
        for pod in self.list_pods():
            status = pod.get("status") or {}
            for container in status.get("containerStatuses") or []:
                waiting = (container.get("state") or {}).get("waiting") or {}
                if waiting.get("reason") in STUCK_REASONS:
                    self.delete()
                    raise TaskFailed(
                        f"{self.shown} cannot start its container: {waiting['reason']}: "
                        f"{' '.join(str(waiting.get('message', '')).split())} "
                        f"(image {container.get('image')}; check kubernetes.image and the "
                        "registry's credentials)"
                    )
            for condition in status.get("conditions") or []:
                if condition.get("type") == "PodScheduled" and condition.get("status") == "False":
                    waiting_for = f"waiting for a node: {condition.get('message', '')}"
                    if waiting_for != self.last_waiting:
                        self.ctx.log(waiting_for)
                        self.last_waiting = waiting_for

    def list_pods(self) -> list[dict[str, Any]]:
        """The Job's pods, oldest first; the Job controller labels them with its name."""
        try:
            found = read_json(
                self.core.list_namespaced_pod,
                self.namespace,
                label_selector=select_labels({"job-name": self.name}),
            )
        except self.errors as exc:
            if is_status(exc, 404):
                return []
            raise TaskFailed(
                f"cannot list the pods of {self.shown}: {describe_api_error(exc)}"
            ) from None
        pods = [pod for pod in found.get("items") or [] if self.owns(pod)]
        return sorted(pods, key=lambda pod: str(pod["metadata"].get("creationTimestamp") or ""))

    def owns(self, pod: dict[str, Any]) -> bool:
        labels = (pod.get("metadata") or {}).get("labels") or {}
        return self.name in (labels.get("job-name"), labels.get("batch.kubernetes.io/job-name"))

    def read_pod(self, name: str) -> dict[str, Any] | None:
        try:
            return read_json(self.core.read_namespaced_pod, name, self.namespace)
        except self.errors as exc:
            if is_status(exc, 404):
                return None
            raise

    def delete(self) -> None:
        """Delete the Job; its pods go with it (Background: without waiting for them)."""
        try:
            self.batch.delete_namespaced_job(
                self.name,
                self.namespace,
                propagation_policy="Background",
                _request_timeout=REQUEST_TIMEOUT,
            )
        except self.errors as exc:
            if not is_status(exc, 404):
                raise TaskFailed(
                    f"cannot delete {self.shown}, which may still be running: "
                    f"{describe_api_error(exc)}"
                ) from None


class _LogFollower(threading.Thread):
    """Forwards the Job's pod log to the task's log as lines come.

    A log stream that breaks while the pod runs is asked for again from its start, with
    timestamps: the lines already forwarded (up to the last time seen, and as many at that
    time) are skipped.
    """

    def __init__(self, run: _JobRun, ctx: TaskContext) -> None:
        super().__init__(name=f"log of {run.shown}", daemon=True)
        self.job_run = run
        self.ctx = ctx
        self.job_ended = threading.Event()
        self.stopped = threading.Event()
        self.response: Any = None
        self.last_time = ""
        self.count_at_last_time = 0
        self.replayed = 0
        self.reported: set[str] = set()

    def run(self) -> None:
        try:
            while not self.stopped.is_set():
                ended = self.job_ended.is_set()  # one more pass after the end gets the tail
                if self.follow_pod():
                    return
                if ended:
                    return
                self.job_ended.wait(POLL_SECONDS)
        except Exception as exc:  # a thread's exception would vanish: say so in the job's log
            self.ctx.log(f"stopped following the log: {describe_api_error(exc)}", level="warning")

    def follow_pod(self) -> bool:
        """Forward the current pod's log; True once its container has finished."""
        errors = self.job_run.errors
        broken: tuple[type[Exception], ...] = (*errors, ValueError)  # ValueError: shut down
        try:
            pods = self.job_run.list_pods()
        except TaskFailed:
            return False  # the main loop reports it
        if not pods or (pods[-1].get("status") or {}).get("phase") == "Pending":
            return False
        name = pods[-1]["metadata"]["name"]
        try:
            self.response = self.job_run.core.read_namespaced_pod_log(
                name,
                self.job_run.namespace,
                container=CONTAINER,
                follow=True,
                timestamps=True,
                _preload_content=False,
                _request_timeout=(REQUEST_TIMEOUT[0], LOG_READ_TIMEOUT),
            )
        except errors as exc:
            if not is_status(exc, 400):  # 400: the container is not running yet
                self.report(f"cannot read the log of pod {name}: {describe_api_error(exc)}")
            return False
        self.replayed = 0
        try:
            for raw in self.response:
                self.forward(raw.decode(errors="replace").rstrip("\r\n"))
        except broken:
            if self.stopped.is_set():
                return True
        finally:
            self.response.release_conn()
        try:
            pod = self.job_run.read_pod(name)
        except errors:
            return False  # asked again at the next pass
        return pod is None or (pod.get("status") or {}).get("phase") in TERMINAL_PHASES

    def forward(self, line: str) -> None:
        stamped = STAMPED.match(line)
        if stamped is None:
            self.ctx.log(line)
            return
        # Fixed-width nanoseconds, so that times compare as strings.
        at = f"{stamped[1]}.{(stamped[2] or '').ljust(9, '0')}"
        if at < self.last_time:
            return
        if at == self.last_time:
            self.replayed += 1
            if self.replayed <= self.count_at_last_time:
                return
            self.count_at_last_time += 1
        else:
            self.last_time, self.count_at_last_time, self.replayed = at, 1, 1
        self.ctx.log(line[stamped.end() :])

    def report(self, problem: str) -> None:
        if problem not in self.reported:
            self.reported.add(problem)
            self.ctx.log(problem, level="warning")

    def finish(self, drain_seconds: float) -> None:
        """Let the last lines arrive (at most ``drain_seconds``), then stop following."""
        self.job_ended.set()
        self.join(drain_seconds)
        self.stopped.set()
        response = self.response
        if response is not None and self.is_alive():
            response.shutdown()  # unblocks a read waiting for a line that will not come


KUBERNETES = TrainingBackend(
    name="kubernetes",
    description="A Job in the team's namespace of a Kubernetes cluster, with CPU, memory "
    "and GPU requests and limits",
    run=run_on_kubernetes,
)

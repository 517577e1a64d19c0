"""Training jobs: submitted for a project, run by a backend as a task, linked to their
MLflow run."""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select, update
from sqlmodel import Session, col

from plugins.training.backends import Resources, TrainingBackend, TrainingSpec
from plugins.training.models import JobOut, TrainingJob
from plugins.training.projects import Project
from portal import Identity, Settings, TaskCancelled, TaskContext, TaskFailed, TaskHandler, tasks
from portal.errors import InvalidInput, NotFound
from portal.models import Task
from portal.plugins import Plugins
from portal.tracking import ensure_experiment, run_url, tracking_client

TASK_KIND = "training.run"
BACKENDS_HOOK = "paved_training_backends"
PARAMETER_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]{0,63}$")
PARAMETER_FORM = "letters, digits, '_' or '-', starting with a letter or '_'"


@dataclass(frozen=True)
class JobView:
    """A job with its task (status, times, error)."""

    job: TrainingJob
    task: Task

    def shown(self, settings: Settings) -> JobOut:
        job, task = self.job, self.task
        assert job.id is not None
        link = None
        if job.mlflow_run_id and job.mlflow_experiment_id:
            link = run_url(settings, job.mlflow_experiment_id, job.mlflow_run_id)
        return JobOut(
            id=job.id,
            task_id=job.task_id,
            status=str(task.status),
            project=job.project,
            model=job.model,
            owner=job.owner,
            backend=job.backend,
            command=job.command,
            parameters=job.parameters,
            resources=job.resources,
            timeout_minutes=job.timeout_minutes,
            source=job.source,
            revision=job.revision,
            experiment=job.experiment,
            trained_on=job.trained_on,
            mlflow_experiment_id=job.mlflow_experiment_id,
            mlflow_run_id=job.mlflow_run_id,
            mlflow_run_url=link,
            submitted_by=job.submitted_by,
            submitted_at=job.submitted_at,
            started_at=task.started_at,
            finished_at=task.finished_at,
            error=task.error,
            usage=job.usage,
        )


def available_backends(plugins: Plugins | None) -> dict[str, TrainingBackend]:
    """Every training backend the plugins contribute, by name (the first of a name wins)."""
    found: dict[str, TrainingBackend] = {}
    if plugins is None:
        return found
    for contribution in plugins.collect(BACKENDS_HOOK, TrainingBackend):
        backend: TrainingBackend = contribution.item
        if backend.name in found:
            plugins.degrade(contribution.plugin, f"training backend {backend.name!r} is taken")
            continue
        found[backend.name] = backend
    return found


def submit_job(
    session: Session,
    project: Project,
    *,
    parameters: dict[str, Any],
    backend: str | None,
    by: Identity,
    settings: Settings,
    backends: dict[str, TrainingBackend],
) -> JobView:
    """Queue a training run of ``project`` (as ``find_project`` found it) with
    ``parameters`` over its defaults."""
    training: dict[str, Any] = project.settings["training"]
    chosen = str(backend or training.get("backend") or settings.training.default_backend)
    if chosen not in backends:
        raise InvalidInput.for_field(
            "backend", f"{chosen!r} is not a training backend here", " or ".join(sorted(backends))
        )
    merged = {**training.get("parameters", {}), **_checked(parameters)}
    resources = Resources.parse(
        training.get("resources"), field="paved-project.yaml: training.resources"
    )
    timeout = int(training.get("timeoutMinutes", 60))
    _check_limits(resources, timeout, settings, is_local=chosen == "local")
    command = shlex.split(str(training["entrypoint"]))
    for name, value in merged.items():
        command += [f"--{name}", _as_argument(value)]
    task = tasks.enqueue(session, TASK_KIND, title=f"Train {_name(project)}", created_by=by.ref)
    assert task.id is not None
    job = TrainingJob(
        task_id=task.id,
        project=project.ref,
        model=project.model_name,
        owner=project.owner,
        backend=chosen,
        command=command,
        parameters=merged,
        resources=resources.as_dict(),
        timeout_minutes=timeout,
        source=project.source,
        revision=project.revision,
        experiment=str(training.get("experiment") or project.model_name),
        trained_on=project.trained_on,
        submitted_by=by.ref,
    )
    session.add(job)
    session.flush()
    task.params = {"job_id": job.id}
    session.add(task)
    session.flush()
    return JobView(job, task)


def _name(project: Project) -> str:
    return str(project.component.body["metadata"]["name"])


def _checked(parameters: dict[str, Any]) -> dict[str, Any]:
    for name, value in parameters.items():
        if not PARAMETER_NAME.match(name):
            raise InvalidInput.for_field(
                f"parameters.{name}", f"{name!r} is not a parameter name", PARAMETER_FORM
            )
        if not isinstance(value, str | int | float | bool):
            raise InvalidInput.for_field(
                f"parameters.{name}", "not a plain value", "a string, number or boolean"
            )
    return parameters


def _as_argument(value: Any) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


def _check_limits(
    resources: Resources, timeout: int, settings: Settings, *, is_local: bool
) -> None:
    limits = settings.training
    if timeout > limits.max_timeout_minutes:
        raise InvalidInput.for_field(
            "paved-project.yaml: training.timeoutMinutes",
            f"{timeout} minutes is over this portal's limit",
            f"at most {limits.max_timeout_minutes} (training.max_timeout_minutes)",
        )
    if not is_local:
        return
    if resources.cpus > limits.max_cpu:
        raise InvalidInput.for_field(
            "paved-project.yaml: training.resources.cpu",
            f"{resources.cpu} CPUs is more than a local job may have",
            f"at most {limits.max_cpu} (training.max_cpu)",
        )
    if resources.memory_bytes > Resources(memory=limits.max_memory).memory_bytes:
        raise InvalidInput.for_field(
            "paved-project.yaml: training.resources.memory",
            f"{resources.memory} is more than a local job may have",
            f"at most {limits.max_memory} (training.max_memory)",
        )
    if resources.gpu:
        raise InvalidInput.for_field(
            "paved-project.yaml: training.resources.gpu",
            "the local runner has no GPUs",
            "0, or the kubernetes backend",
        )


def get_job(session: Session, job_id: int) -> JobView:
    job = session.get(TrainingJob, job_id)
    if job is None:
        raise NotFound(f"there is no training job {job_id}")
    return JobView(job, tasks.get_task(session, job.task_id))


def list_jobs(
    session: Session, *, project: str | None = None, owner: str | None = None, limit: int = 50
) -> list[JobView]:
    """Newest first, of one project (Component ref) or one owner when given."""
    query = (
        select(TrainingJob, Task)
        .join(Task, col(Task.id) == col(TrainingJob.task_id))
        .order_by(col(TrainingJob.id).desc())
        .limit(limit)
    )
    if project is not None:
        query = query.where(col(TrainingJob.project) == project)
    if owner is not None:
        query = query.where(col(TrainingJob.owner) == owner)
    return [JobView(job, task) for job, task in session.execute(query).all()]


def cancel_job(session: Session, job_id: int, *, by: Identity) -> JobView:
    view = get_job(session, job_id)
    tasks.request_cancel(session, view.job.task_id, by=by.ref)
    return get_job(session, job_id)


# -- Running a job (the task) ------------------------------------------------------------


def run_job(ctx: TaskContext) -> dict[str, Any]:
    """The task: an MLflow run made for the job, then the backend runs the entry point."""
    settings = ctx.settings
    assert settings is not None, "training jobs need the portal's settings"
    job = _load(ctx)
    backend = available_backends(ctx.plugins).get(job.backend)
    if backend is None:
        raise TaskFailed(f"the training backend {job.backend!r} is not loaded in this worker")
    run_id, experiment_id = _start_run(ctx, job, settings)
    spec = TrainingSpec(
        job_id=job.id or 0,
        project=job.project,
        owner=job.owner,
        source=job.source,
        revision=job.revision,
        command=job.command,
        env={
            "MLFLOW_TRACKING_URI": settings.tracking_uri,
            "MLFLOW_EXPERIMENT_ID": experiment_id,
            "MLFLOW_RUN_ID": run_id,
            "PAVED_JOB_ID": str(job.id),
            "PAVED_PROJECT": job.project,
        },
        resources=Resources.parse(job.resources),
        timeout_minutes=job.timeout_minutes,
        labels={"paved.dev/job": str(job.id), "paved.dev/team": job.owner.rsplit("/", 1)[-1]},
    )
    client = tracking_client(settings)
    try:
        outcome = backend.run(spec, ctx, settings)
    except TaskCancelled:
        client.set_terminated(run_id, status="KILLED")
        raise
    except Exception:
        client.set_terminated(run_id, status="FAILED")
        raise
    _record_usage(ctx, job, outcome.usage)
    if outcome.exit_code != 0:
        client.set_terminated(run_id, status="FAILED")
        why = outcome.message or f"exited with status {outcome.exit_code}"
        raise TaskFailed(f"the training entry point {why}; its output is in the log above")
    run = client.get_run(run_id)
    if run.info.status == "RUNNING":  # an entry point that never ended its run
        client.set_terminated(run_id, status="FINISHED")
    metrics = dict(run.data.metrics)
    shown = ", ".join(f"{name} {value:.4g}" for name, value in sorted(metrics.items()))
    ctx.log(f"finished: MLflow run {run_id}" + (f" ({shown})" if shown else ""))
    return {"mlflow_run_id": run_id, "metrics": metrics, "usage": outcome.usage}


def _load(ctx: TaskContext) -> TrainingJob:
    with Session(ctx.engine) as session:
        job = session.get(TrainingJob, int(ctx.params["job_id"]))
        if job is None:
            raise TaskFailed(f"training job {ctx.params['job_id']} no longer exists")
        session.expunge(job)
        return job


def _start_run(ctx: TaskContext, job: TrainingJob, settings: Settings) -> tuple[str, str]:
    """An MLflow run made ahead for the entry point to resume (as ``mlflow run`` does),
    tagged with its lineage: the project, the commit, the data and who asked."""
    experiment_id = ensure_experiment(settings, job.experiment)
    tags = {
        "mlflow.runName": f"paved-job-{job.id}",
        "mlflow.user": job.submitted_by,
        "mlflow.source.name": job.source,
        "mlflow.source.type": "PROJECT",
        "paved.job": str(job.id),
        "paved.project": job.project,
        "paved.owner": job.owner,
        "paved.trained_on": ",".join(job.trained_on),
    }
    if job.revision:
        tags["mlflow.source.git.commit"] = job.revision
    run = tracking_client(settings).create_run(experiment_id, tags=tags)
    run_id = str(run.info.run_id)
    with Session(ctx.engine) as session:
        session.execute(
            update(TrainingJob)
            .where(col(TrainingJob.id) == job.id)
            .values(mlflow_run_id=run_id, mlflow_experiment_id=experiment_id)
        )
        session.commit()
    link = run_url(settings, experiment_id, run_id)
    ctx.log(f"MLflow run {run_id} in experiment {job.experiment}" + (f": {link}" if link else ""))
    return run_id, experiment_id


def _record_usage(ctx: TaskContext, job: TrainingJob, usage: dict[str, float]) -> None:
    with Session(ctx.engine) as session:
        session.execute(
            update(TrainingJob).where(col(TrainingJob.id) == job.id).values(usage=usage)
        )
        session.commit()


HANDLER = TaskHandler(TASK_KIND, run_job, title="Training run")

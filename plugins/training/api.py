"""The training REST API under ``/api/training``: submit, list, follow and cancel jobs."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request

from plugins.training import actions, service
from plugins.training.models import JobIn, JobOut
from plugins.training.resources import job_of, project_to_train
from portal import Identity, requires, tasks
from portal.db import SessionDep
from portal.models import TaskLogOut
from portal.settings import Settings

router = APIRouter(prefix="/api/training", tags=["training"])


def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


@router.post("/jobs", status_code=201)
def submit_job(
    request: Request,
    session: SessionDep,
    user: Annotated[Identity, requires(actions.JOB_SUBMIT, resource=project_to_train)],
) -> JobOut:
    """Train a project: its own entry point, with these parameters over its defaults."""
    body: JobIn = request.state.job_in
    settings = _settings(request)
    view = service.submit_job(
        session,
        request.state.project,
        parameters=body.parameters,
        backend=body.backend,
        by=user,
        settings=settings,
        backends=request.app.state.training_backends,
    )
    return view.shown(settings)


@router.get("/jobs", dependencies=[requires(actions.JOB_READ)])
def list_jobs(
    request: Request,
    session: SessionDep,
    project: Annotated[str | None, Query(description="Only this Component's jobs")] = None,
    owner: Annotated[str | None, Query(description="Only this group's jobs")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> list[JobOut]:
    """Training jobs, newest first."""
    found = service.list_jobs(session, project=project, owner=owner, limit=limit)
    return [view.shown(_settings(request)) for view in found]


@router.get("/jobs/{job_id}", dependencies=[requires(actions.JOB_READ)])
def get_job(job_id: int, request: Request, session: SessionDep) -> JobOut:
    return service.get_job(session, job_id).shown(_settings(request))


@router.get("/jobs/{job_id}/log", dependencies=[requires(actions.JOB_READ)])
def get_job_log(
    job_id: int,
    session: SessionDep,
    after: Annotated[int, Query(ge=0, description="Only lines with a greater id")] = 0,
    limit: Annotated[int, Query(ge=1, le=5000)] = 1000,
) -> list[TaskLogOut]:
    """The job's log lines, oldest first; follow it by asking again ``after`` the last id."""
    task_id = service.get_job(session, job_id).job.task_id
    return [
        TaskLogOut.model_validate(line)
        for line in tasks.list_log_lines(session, task_id, after=after, limit=limit)
    ]


@router.post("/jobs/{job_id}/cancel")
def cancel_job(
    job_id: int,
    request: Request,
    session: SessionDep,
    user: Annotated[Identity, requires(actions.JOB_CANCEL, resource=job_of)],
) -> JobOut:
    """Stop a job: at once if it waits, within seconds if it runs."""
    return service.cancel_job(session, job_id, by=user).shown(_settings(request))

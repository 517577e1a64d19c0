"""What training's actions are about, as the policy sees it: the project a job is asked for
(from the API's body or the Train button's form) and a job. A loader keeps what it found on
the request, so the route does not read the project's repository a second time."""

from __future__ import annotations

from fastapi import Request
from fastapi.concurrency import run_in_threadpool
from pydantic import ValidationError

from plugins.training import service
from plugins.training.models import JobIn
from plugins.training.projects import Project, find_project
from portal import Resource
from portal.db import SessionDep
from portal.errors import InvalidInput

PROJECT_FORM = "component:<namespace>/<name>"


def project_resource(project: Project, backend: str | None = None) -> Resource:
    return Resource(
        ref=project.ref,
        kind="Component",
        owner=project.owner or None,
        facts={"backend": backend, "model": project.model_name},
    )


async def project_to_train(request: Request, session: SessionDep) -> Resource:
    """The project ``POST /api/training/jobs`` asks for (its owner decides)."""
    try:
        body = JobIn.model_validate(await request.json())
    except (ValueError, ValidationError):
        raise InvalidInput.for_field(
            "body", "not a training request", f'{{"project": "{PROJECT_FORM}"}}'
        ) from None
    request.state.job_in = body
    request.state.project = await run_in_threadpool(find_project, session, body.project)
    return project_resource(request.state.project, body.backend)


async def project_from_form(request: Request, session: SessionDep) -> Resource:
    """The project the Train button names."""
    project = (await request.form()).get("project")
    if not isinstance(project, str) or not project:
        raise InvalidInput.for_field("project", "missing", PROJECT_FORM)
    request.state.project = await run_in_threadpool(find_project, session, project)
    return project_resource(request.state.project)


def job_of(job_id: int, session: SessionDep) -> Resource:
    """A job: its project's owner and who submitted it."""
    job = service.get_job(session, job_id).job
    return Resource(
        ref=f"training-job:{job.id}",
        kind="TrainingJob",
        owner=job.owner,
        facts={"submitted_by": job.submitted_by, "project": job.project},
    )

"""Training's pages: the jobs list, a job's page with its log followed live, and the
Training tab of Component and Model pages with its Train button.

Every page works without JavaScript: the Train button posts a form and redirects to the
job's page, whose log reloads; with JavaScript the log follows the job as it runs.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from plugins.training import actions, service
from plugins.training.projects import find_project
from plugins.training.resources import job_of, project_from_form
from portal import Identity, PavedError, requires, tasks
from portal.db import SessionDep
from portal.models import TaskStatus
from portal.settings import Settings
from portal.shell import Shell

router = APIRouter(include_in_schema=False)


def _shell(request: Request) -> Shell:
    shell: Shell = request.app.state.shell
    return shell


def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


@router.get("/training", dependencies=[requires(actions.JOB_READ)])
def jobs_page(request: Request, session: SessionDep) -> HTMLResponse:
    views = service.list_jobs(session, limit=100)
    jobs = [view.shown(_settings(request)) for view in views]
    return _shell(request).render(request, "training/jobs.html", {"jobs": jobs})


@router.get("/training/jobs/{job_id}", dependencies=[requires(actions.JOB_READ)])
def job_page(job_id: int, request: Request, session: SessionDep) -> HTMLResponse:
    view = service.get_job(session, job_id)
    lines = tasks.list_log_lines(session, view.job.task_id)
    context = {
        "job": view.shown(_settings(request)),
        "lines": lines,
        "is_finished": TaskStatus(view.task.status).is_finished,
    }
    return _shell(request).render(request, "training/job.html", context)


@router.post("/training/jobs")
def submit_from_form(
    request: Request,
    session: SessionDep,
    user: Annotated[Identity, requires(actions.JOB_SUBMIT, resource=project_from_form)],
) -> Response:
    """The Train button: the project's defaults, then its job's page."""
    view = service.submit_job(
        session,
        request.state.project,
        parameters={},
        backend=None,
        by=user,
        settings=_settings(request),
        backends=request.app.state.training_backends,
    )
    target = f"/training/jobs/{view.job.id}"
    if request.headers.get("HX-Request") == "true":
        return Response(status_code=204, headers={"HX-Redirect": target})
    return RedirectResponse(target, status_code=303)


@router.post("/training/jobs/{job_id}/cancel")
def cancel_from_form(
    job_id: int,
    session: SessionDep,
    user: Annotated[Identity, requires(actions.JOB_CANCEL, resource=job_of)],
) -> RedirectResponse:
    service.cancel_job(session, job_id, by=user)
    return RedirectResponse(f"/training/jobs/{job_id}", status_code=303)


@router.get("/training/tabs/{kind}/{namespace}/{name}", dependencies=[requires(actions.JOB_READ)])
def entity_tab(
    kind: str, namespace: str, name: str, request: Request, session: SessionDep
) -> HTMLResponse:
    """The Training tab: the project's jobs and its Train button (or why it has none)."""
    ref = f"{kind}:{namespace}/{name}".lower()
    try:
        project = find_project(session, ref)
    except PavedError as exc:
        context: dict[str, Any] = {"problem": exc.detail, "jobs": [], "project": None}
        return _shell(request).render(request, "training/tab.html", context)
    views = service.list_jobs(session, project=project.ref, limit=20)
    context = {
        "problem": None,
        "project": project,
        "training": project.settings["training"],
        "jobs": [view.shown(_settings(request)) for view in views],
    }
    return _shell(request).render(request, "training/tab.html", context)

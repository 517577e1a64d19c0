"""The core's pages: home, tasks with live logs, and the plugin admin page."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from starlette.responses import HTMLResponse, RedirectResponse

from portal import actions, tasks
from portal.db import SessionDep
from portal.gate import requires
from portal.models import TaskStatus
from portal.shell import Shell

router = APIRouter(include_in_schema=False)


def _shell(request: Request) -> Shell:
    shell: Shell = request.app.state.shell
    return shell


@router.get("/", dependencies=[requires(actions.HOME_READ)])
def home(request: Request, session: SessionDep) -> HTMLResponse:
    plugins = request.app.state.plugins.describe()
    return _shell(request).render(
        request,
        "home.html",
        {
            "task_counts": tasks.count_by_status(session),
            "recent_tasks": tasks.list_tasks(session, limit=5),
            "plugins": plugins,
            "unhealthy_plugins": [p for p in plugins if not p.is_healthy],
        },
    )


@router.get("/admin/plugins", dependencies=[requires(actions.PLUGINS_READ)])
def plugins_page(request: Request) -> HTMLResponse:
    return _shell(request).render(
        request,
        "admin/plugins.html",
        {
            "plugins": request.app.state.plugins.describe(),
            "actions": sorted(request.app.state.actions.values(), key=lambda a: a.name),
        },
        fragment="_partials/plugin_table.html",
    )


@router.get("/tasks", dependencies=[requires(actions.TASK_READ)])
def tasks_page(
    request: Request,
    session: SessionDep,
    status: Annotated[TaskStatus | None, Query()] = None,
    before: Annotated[int | None, Query()] = None,
) -> HTMLResponse:
    found = tasks.list_tasks(session, status=status, before=before, limit=50)
    return _shell(request).render(
        request,
        "tasks/list.html",
        {
            "tasks": found,
            "status": status,
            "statuses": list(TaskStatus),
            "counts": tasks.count_by_status(session),
            "older": found[-1].id if len(found) == 50 else None,
        },
        fragment="_partials/task_rows.html",
    )


@router.get("/tasks/{task_id}", dependencies=[requires(actions.TASK_READ)])
def task_page(task_id: int, request: Request, session: SessionDep) -> HTMLResponse:
    task = tasks.get_task(session, task_id)
    return _shell(request).render(
        request,
        "tasks/detail.html",
        {
            "task": task,
            "lines": tasks.log_lines(session, task_id, limit=5000),
            "is_finished": TaskStatus(task.status).is_finished,
        },
    )


@router.post("/tasks/{task_id}/cancel", dependencies=[requires(actions.TASK_CANCEL)])
def cancel_task_form(task_id: int, session: SessionDep) -> RedirectResponse:
    """The cancel button on a task page; works without JavaScript (post, then redirect)."""
    tasks.request_cancel(session, task_id)
    return RedirectResponse(f"/tasks/{task_id}", status_code=303)

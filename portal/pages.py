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
    context = {
        "overview": tasks.browse(session, limit=5),
        "plugins": plugins,
        "unhealthy_plugins": [plugin for plugin in plugins if not plugin.is_healthy],
    }
    return _shell(request).render(request, "home.html", context)


@router.get("/admin/plugins", dependencies=[requires(actions.PLUGINS_READ)])
def plugins_page(request: Request) -> HTMLResponse:
    context = {
        "plugins": request.app.state.plugins.describe(),
        "actions": sorted(request.app.state.actions.values(), key=lambda a: a.name),
    }
    return _shell(request).render(
        request, "admin/plugins.html", context, fragment="_partials/plugin_table.html"
    )


@router.get("/tasks", dependencies=[requires(actions.TASK_READ)])
def tasks_page(
    request: Request,
    session: SessionDep,
    status: Annotated[TaskStatus | None, Query()] = None,
    before: Annotated[int | None, Query()] = None,
) -> HTMLResponse:
    context = {
        "page": tasks.browse(session, status=status, before=before),
        "status": status,
        "before": before,
        "statuses": list(TaskStatus),
    }
    return _shell(request).render(
        request, "tasks/list.html", context, fragment="_partials/task_rows.html"
    )


@router.get("/tasks/{task_id}", dependencies=[requires(actions.TASK_READ)])
def task_page(task_id: int, request: Request, session: SessionDep) -> HTMLResponse:
    task, lines = tasks.read_progress(session, task_id, after=0)
    context = {
        "task": task,
        "lines": lines,
        "is_finished": TaskStatus(task.status).is_finished,
        "runs_here": task.kind in request.app.state.task_handlers,
    }
    return _shell(request).render(request, "tasks/detail.html", context)


@router.post("/tasks/{task_id}/cancel", dependencies=[requires(actions.TASK_CANCEL)])
def cancel_task_form(task_id: int, session: SessionDep) -> RedirectResponse:
    """The cancel button on a task page; works without JavaScript (post, then redirect)."""
    tasks.request_cancel(session, task_id)
    return RedirectResponse(f"/tasks/{task_id}", status_code=303)

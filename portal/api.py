"""The core's REST API: tasks (with live logs over SSE), plugins and the API documents."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.openapi.docs import get_swagger_ui_html
from sqlalchemy.engine import Engine
from sqlmodel import Session
from sse_starlette.sse import EventSourceResponse
from starlette.responses import HTMLResponse, JSONResponse

from portal import actions, tasks
from portal.db import SessionDep
from portal.gate import requires
from portal.models import PluginOut, TaskLogOut, TaskOut, TaskStatus

router = APIRouter(prefix="/api", tags=["core"])

# How often a followed task's log is polled; it is one indexed query per interval.
FOLLOW_INTERVAL = 0.25


@router.get("/openapi.json", dependencies=[requires(actions.API_DOCS_READ)])
def openapi_document(request: Request) -> JSONResponse:
    """The OpenAPI document of every route of this portal, plugins included."""
    return JSONResponse(request.app.openapi())


@router.get("/docs", dependencies=[requires(actions.API_DOCS_READ)], include_in_schema=False)
def api_docs() -> HTMLResponse:
    """Swagger UI for the API, served from the portal's own static files (built from npm)."""
    return get_swagger_ui_html(
        openapi_url="/api/openapi.json",
        title="Paved API",
        swagger_js_url="/static/vendor/swagger-ui-bundle.js",
        swagger_css_url="/static/vendor/swagger-ui.css",
        swagger_favicon_url="/static/favicon.svg",
    )


@router.get("/plugins", dependencies=[requires(actions.PLUGINS_READ)])
def list_plugins(request: Request) -> list[PluginOut]:
    """Every plugin found, with its version, hooks and health."""
    return [
        PluginOut.model_validate(r, from_attributes=True)
        for r in request.app.state.plugins.describe()
    ]


@router.get("/tasks", dependencies=[requires(actions.TASK_READ)])
def list_tasks(
    session: SessionDep,
    status: TaskStatus | None = None,
    kind: str | None = None,
    before: Annotated[int | None, Query(description="Page back from this task id.")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> list[TaskOut]:
    """Tasks, newest first."""
    found = tasks.list_tasks(session, status=status, kind=kind, before=before, limit=limit)
    return [TaskOut.model_validate(task) for task in found]


@router.get("/tasks/{task_id}", dependencies=[requires(actions.TASK_READ)])
def get_task(task_id: int, session: SessionDep) -> TaskOut:
    return TaskOut.model_validate(tasks.get_task(session, task_id))


@router.get("/tasks/{task_id}/log", dependencies=[requires(actions.TASK_READ)])
def get_task_log(
    task_id: int,
    session: SessionDep,
    after: Annotated[int, Query(ge=0, description="Only lines with a greater id.")] = 0,
    limit: Annotated[int, Query(ge=1, le=5000)] = 1000,
) -> list[TaskLogOut]:
    """A task's log lines, oldest first; page with ``after`` (the last id you have)."""
    lines = tasks.list_log_lines(session, task_id, after=after, limit=limit)
    return [TaskLogOut.model_validate(line) for line in lines]


@router.post("/tasks/{task_id}/cancel", dependencies=[requires(actions.TASK_CANCEL)])
def cancel_task(task_id: int, session: SessionDep) -> TaskOut:
    """Cancel a queued task, or ask a running one to stop."""
    return TaskOut.model_validate(tasks.request_cancel(session, task_id))


@router.get(
    "/tasks/{task_id}/events",
    dependencies=[requires(actions.TASK_READ)],
    response_class=EventSourceResponse,
)
async def follow_task(
    task_id: int,
    request: Request,
    after: Annotated[int, Query(ge=0, description="Start after this log line id.")] = 0,
    last_event_id: Annotated[int, Header(ge=0)] = 0,
) -> EventSourceResponse:
    """Follow a task live (Server-Sent Events): ``log`` and ``progress`` events, then one
    ``status`` event when the task has finished and its whole log was sent.

    Reconnecting clients send ``Last-Event-ID`` and get only the lines they missed.
    """
    engine = request.app.state.engine
    start = max(after, last_event_id)
    first = await run_in_threadpool(_read, engine, task_id, start)  # 404 before streaming
    return EventSourceResponse(_task_events(engine, task_id, start, first), ping=15)


Progress = tuple[TaskOut, list[TaskLogOut]]


def _read(engine: Engine, task_id: int, after: int) -> Progress:
    with Session(engine) as session:
        task, lines = tasks.read_progress(session, task_id, after=after)
        return TaskOut.model_validate(task), [TaskLogOut.model_validate(x) for x in lines]


async def _task_events(
    engine: Engine, task_id: int, after: int, first: Progress
) -> AsyncIterator[dict[str, Any]]:
    task, lines = first
    shown_progress: tuple[int | None, int | None] = (None, None)
    while True:
        for line in lines:
            after = line.id
            yield {"event": "log", "id": str(line.id), "data": line.model_dump_json()}
        progress = (task.progress_done, task.progress_total)
        if task.progress_total and progress != shown_progress:
            shown_progress = progress
            yield {
                "event": "progress",
                "data": json.dumps({"done": progress[0], "total": progress[1]}),
            }
        # read_progress read the status before the lines: a task already finished then
        # has its whole log in ``lines``, so the stream can end.
        if task.status.is_finished:
            yield {"event": "status", "data": task.model_dump_json()}
            return
        if not lines:
            await asyncio.sleep(FOLLOW_INTERVAL)
        task, lines = await run_in_threadpool(_read, engine, task_id, after)

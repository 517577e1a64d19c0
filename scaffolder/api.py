"""The scaffolder REST API under ``/api/scaffolder``, with the routes and shapes of
Backstage's scaffolder backend (invalid input is 422, each field named)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.concurrency import run_in_threadpool
from sqlalchemy.engine import Engine
from sqlmodel import Session
from sse_starlette import EventSourceResponse

from catalog.refs import EntityRef
from portal import Identity, requires
from portal.db import SessionDep, as_utc
from portal.errors import InvalidInput
from portal.models import TaskLog, TaskStatus
from portal.problems import use_backstage_error_bodies
from portal.settings import Settings
from scaffolder import actions, dryrun, service, templates
from scaffolder.execution import actions_of
from scaffolder.models import DryRunIn, RetryIn, ScaffoldIn
from scaffolder.resources import RunAskedByApi, task_of, template_to_run
from scaffolder.templating import list_extensions

FOLLOW_INTERVAL = 0.25

router = APIRouter(
    prefix="/api/scaffolder",
    tags=["scaffolder"],
    dependencies=[Depends(use_backstage_error_bodies)],
)


def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


@router.get("/v2/actions", dependencies=[requires(actions.ACTION_READ)])
def list_actions(request: Request) -> list[dict[str, Any]]:
    """Every action a template's steps may use, with its input and output schemas."""
    found = actions_of(request.app.state.plugins)
    return [action.listed() for action in found.values()]


@router.get(
    "/v2/templates/{namespace}/{kind}/{name}/parameter-schema",
    dependencies=[requires(actions.TEMPLATE_READ)],
)
def get_parameter_schema(
    namespace: str, kind: str, name: str, session: SessionDep
) -> dict[str, Any]:
    """The form a template asks to fill: its title and one JSON schema per step."""
    return templates.build_parameter_schema(session, EntityRef(kind, namespace, name))


@router.get("/v2/templating-extensions", dependencies=[requires(actions.TEMPLATE_READ)])
def list_templating_extensions() -> dict[str, Any]:
    """The filters and globals template expressions may use."""
    return list_extensions()


@router.post("/v2/tasks", status_code=201)
def create_task(
    body: ScaffoldIn,
    request: Request,
    session: SessionDep,
    user: Annotated[Identity, requires(actions.TEMPLATE_RUN, resource=template_to_run)],
    # After the gate, which loaded it for the policy: read once.
    asked: RunAskedByApi,
) -> dict[str, str]:
    """Run a template with the values of its form; the run is a task, followed live."""
    view = service.start_run(
        session,
        asked,
        sent_secrets=body.secrets,
        by=user,
        settings=_settings(request),
        known_actions=actions_of(request.app.state.plugins).keys(),
    )
    return {"id": str(view.task.id)}


@router.get("/v2/tasks", dependencies=[requires(actions.TASK_READ)])
def list_tasks(
    session: SessionDep,
    created_by: Annotated[str | None, Query(alias="createdBy")] = None,
    status: str | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0)] = 0,
    order: Literal["asc", "desc"] = "desc",
) -> dict[str, Any]:
    """Runs, newest first, of one person (``createdBy``) or with one ``status``."""
    page = service.list_runs(
        session,
        created_by=created_by,
        status=status,
        limit=limit,
        offset=offset,
        newest_first=order == "desc",
    )
    return {"tasks": [serialize_task(view) for view in page.runs], "totalTasks": page.total}


@router.get("/v2/tasks/{task_id}", dependencies=[requires(actions.TASK_READ)])
def get_task(task_id: str, session: SessionDep) -> dict[str, Any]:
    """One run: its spec (template, values without secrets, steps), status and author."""
    return serialize_task(service.get_run(session, service.parse_task_id(task_id)))


@router.post("/v2/tasks/{task_id}/cancel")
def cancel_task(
    task_id: str,
    request: Request,
    session: SessionDep,
    user: Annotated[Identity, requires(actions.TASK_CANCEL, resource=task_of)],
) -> dict[str, str]:
    """Stop a run: at once if it waits, at the end of its current step if it runs."""
    view = service.cancel_run(
        session, service.parse_task_id(task_id), by=user, settings=_settings(request)
    )
    return {"status": view.status}


@router.post("/v2/tasks/{task_id}/retry", status_code=201)
def retry_task(
    task_id: str,
    request: Request,
    session: SessionDep,
    user: Annotated[Identity, requires(actions.TASK_RETRY, resource=task_of)],
    body: RetryIn | None = None,
) -> dict[str, str]:
    """Run a failed run again, from the step that failed."""
    view = service.retry_run(
        session,
        service.parse_task_id(task_id),
        sent_secrets=body.secrets if body else None,
        by=user,
        settings=_settings(request),
    )
    return {"id": str(view.task.id)}


@router.get("/v2/tasks/{task_id}/events", dependencies=[requires(actions.TASK_READ)])
def list_task_events(
    task_id: str, session: SessionDep, after: Annotated[int, Query(ge=0)] = 0
) -> list[dict[str, Any]]:
    """The run's events after event ``after``: log lines, step changes, its completion."""
    number = service.parse_task_id(task_id)
    view = service.get_run(session, number)
    return [
        serialize_event(line, view) for line in service.list_events(session, number, after=after)
    ]


@router.get(
    "/v2/tasks/{task_id}/eventstream",
    dependencies=[requires(actions.TASK_READ)],
    response_class=EventSourceResponse,
)
async def stream_task_events(
    task_id: str, request: Request, after: Annotated[int, Query(ge=0)] = 0
) -> EventSourceResponse:
    """The run's events live (Server-Sent Events ``log``, then ``completion``)."""
    number = service.parse_task_id(task_id)
    engine: Engine = request.app.state.engine
    await run_in_threadpool(_read_events, engine, number, after)  # 404 before streaming
    return EventSourceResponse(_follow(engine, number, after), ping=15)


@router.post("/v2/dry-run")
def dry_run(
    body: DryRunIn,
    request: Request,
    session: SessionDep,
    user: Annotated[Identity, requires(actions.TEMPLATE_RUN)],
) -> dict[str, Any]:
    """Render a template with nothing changed anywhere: its files, log and output. Asks for
    the right to run templates, since an inline template is code run on the server."""
    settings = _settings(request)
    if body.template_ref:
        template, base = service.template_of(session, service.parse_template_ref(body.template_ref))
        files = service.open_template_files(base, settings)
    elif body.template is not None:
        template, files = body.template, dryrun.read_inline_files(body.directory_contents)
    else:
        raise InvalidInput.for_field(
            "template", "missing", "a template with its directoryContents, or a templateRef"
        )
    done = dryrun.dry_run(
        template,
        body.values,
        sent_secrets=body.secrets or {},
        files=files,
        actions=actions_of(request.app.state.plugins),
        user={"ref": user.ref, "entity": service.find_user_entity(session, user)},
        settings=settings,
    )
    return {
        "log": done.log,
        "directoryContents": done.files,
        "output": done.output,
        "steps": done.steps,
    }


def _read_events(engine: Engine, task_id: int, after: int) -> tuple[bool, list[dict[str, Any]]]:
    with Session(engine) as session:
        view = service.get_run(session, task_id)
        is_finished = TaskStatus(view.task.status).is_finished
        lines = service.list_events(session, task_id, after=after)
        return is_finished, [serialize_event(line, view) for line in lines]


async def _follow(engine: Engine, task_id: int, after: int) -> AsyncIterator[dict[str, Any]]:
    ended = False
    while True:
        # The status is read before the lines: a run finished then has all of its lines.
        is_finished, found = await run_in_threadpool(_read_events, engine, task_id, after)
        for shown in found:
            after = shown["id"]
            ended = ended or shown["type"] in ("completion", "cancelled")
            yield {"event": shown["type"], "id": str(shown["id"]), "data": json.dumps(shown)}
        if is_finished:
            if not ended:
                yield {"event": "completion", "data": json.dumps({"taskId": str(task_id)})}
            return
        if not found:
            await asyncio.sleep(FOLLOW_INTERVAL)


def serialize_task(view: service.RunView) -> dict[str, Any]:
    """A run as Backstage's ``SerializedTask``."""
    task = view.task
    shown: dict[str, Any] = {
        "id": str(task.id),
        "spec": view.run.spec,
        "status": view.status,
        "createdAt": _format_moment(task.created_at),
        "createdBy": task.created_by,
    }
    if task.heartbeat_at is not None:
        shown["lastHeartbeatAt"] = _format_moment(task.heartbeat_at)
    return shown


def serialize_event(line: TaskLog, view: service.RunView) -> dict[str, Any]:
    """A log line as Backstage's ``SerializedTaskEvent``: a run's last line (about no step,
    with a status) is its completion, carrying the output; a step's failure carries the
    problems it had, each naming its field."""
    body: dict[str, Any] = {"message": line.message}
    if line.step:
        body["stepId"] = line.step
    if line.step_status:
        body["status"] = line.step_status
    if line.step and line.step_status == "failed":
        errors = (view.run.steps.get(line.step) or {}).get("errors")
        if errors:
            body["errors"] = errors
    kind = "log"
    if line.step is None and line.step_status in ("completed", "failed"):
        kind = "completion"
        if line.step_status == "completed":
            body["output"] = view.run.output or {}
    elif line.step is None and line.step_status == "cancelled":
        kind = "cancelled"
    return {
        "id": line.id,
        "taskId": str(view.task.id),
        "body": body,
        "type": kind,
        "createdAt": _format_moment(line.at),
        "level": line.level,
    }


def _format_moment(value: Any) -> str:
    return str(as_utc(value).isoformat())

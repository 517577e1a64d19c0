"""Long work as persisted tasks: the queue as services see it (enqueue, read, cancel).

Running tasks is ``portal.worker``'s job; this module never claims or runs anything.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select, update
from sqlalchemy.engine import CursorResult
from sqlmodel import Session, col

from portal.db import utcnow
from portal.errors import Conflict, InvalidInput, NotFound
from portal.models import Task, TaskLog, TaskStatus

if TYPE_CHECKING:
    from portal.worker import TaskContext

# A task kind is "<plugin>.<verb>", e.g. "catalog.ingest".
KIND_EXPECTED = "<plugin>.<verb>"


class TaskCancelled(Exception):
    """Raised by a handler (or ``TaskContext.check_cancelled``) to stop a cancelled task."""


class TaskFailed(Exception):
    """Raised by a handler when its work failed for a reason it can say in a line (bad
    input, a step that went wrong): the task fails with that line and no traceback."""


@dataclass(frozen=True)
class TaskHandler:
    """A kind of long work: ``run(ctx)`` does it and may return a JSON-able result dict."""

    kind: str
    run: Callable[[TaskContext], dict[str, Any] | None]
    title: str

    def __post_init__(self) -> None:
        check_kind(self.kind)
        if not callable(self.run):
            raise TypeError(f"TaskHandler {self.kind}: run must be callable")


@dataclass(frozen=True)
class TaskPage:
    """One page of tasks (newest first), the counts by status, and where older ones start."""

    tasks: list[Task]
    counts: dict[str, int]
    older: int | None


def check_kind(kind: str) -> str:
    if not isinstance(kind, str) or kind.count(".") != 1 or not all(kind.split(".")):
        raise InvalidInput.for_field("kind", f"{kind!r} is not a task kind", KIND_EXPECTED)
    return kind


def enqueue(
    session: Session,
    kind: str,
    *,
    title: str,
    params: dict[str, Any] | None = None,
    created_by: str | None = None,
) -> Task:
    """Queue work of ``kind``; a worker claims it once the caller's transaction commits."""
    task = Task(kind=check_kind(kind), title=title, params=params or {}, created_by=created_by)
    session.add(task)
    session.flush()
    return task


def get_task(session: Session, task_id: int) -> Task:
    """The task with this id; raises NotFound."""
    task = session.get(Task, task_id)
    if task is None:
        raise NotFound(f"there is no task {task_id}")
    return task


def list_tasks(
    session: Session,
    *,
    status: TaskStatus | None = None,
    kind: str | None = None,
    before: int | None = None,
    limit: int = 50,
) -> list[Task]:
    """Newest first; ``before`` is the id to page back from."""
    query = select(Task).order_by(col(Task.id).desc()).limit(limit)
    if status is not None:
        query = query.where(col(Task.status) == status)
    if kind is not None:
        query = query.where(col(Task.kind) == kind)
    if before is not None:
        query = query.where(col(Task.id) < before)
    return list(session.scalars(query))


def browse(
    session: Session,
    *,
    status: TaskStatus | None = None,
    before: int | None = None,
    limit: int = 50,
) -> TaskPage:
    """A page of tasks for people: the newest ``limit`` (of ``status``) before ``before``."""
    found = list_tasks(session, status=status, before=before, limit=limit + 1)
    counts = session.execute(select(col(Task.status), func.count()).group_by(col(Task.status)))
    older = found[limit - 1].id if len(found) > limit else None
    return TaskPage(found[:limit], dict(counts.all()), older)


def list_log_lines(
    session: Session, task_id: int, *, after: int = 0, limit: int = 1000
) -> list[TaskLog]:
    """A task's log lines with an id greater than ``after``, oldest first; raises NotFound."""
    get_task(session, task_id)
    query = (
        select(TaskLog)
        .where(col(TaskLog.task_id) == task_id, col(TaskLog.id) > after)
        .order_by(col(TaskLog.id))
        .limit(limit)
    )
    return list(session.scalars(query))


def read_progress(session: Session, task_id: int, *, after: int) -> tuple[Task, list[TaskLog]]:
    """The task and its new log lines, read in that order so a finished task's log is whole.

    Reading the status first matters for followers: if the task was finished before the
    lines were read, every line it will ever have is among them.
    """
    task = get_task(session, task_id)
    return task, list_log_lines(session, task_id, after=after)


def request_cancel(session: Session, task_id: int, *, by: str | None = None) -> Task:
    """Cancel a queued task now; ask a running one to stop at its next check.

    Each change is one conditional UPDATE, so a worker claiming the task at the same
    moment either gets a cancelled task (and skips it) or a running one asked to stop.
    """
    task = get_task(session, task_id)
    who = f" by {by}" if by else ""
    cancel_now = {"status": TaskStatus.CANCELLED, "cancel_requested": True, "finished_at": utcnow()}
    if _updated(session, task_id, TaskStatus.QUEUED, cancel_now):
        message = f"cancelled{who} before it started"
    elif _updated(session, task_id, TaskStatus.RUNNING, {"cancel_requested": True}):
        message = f"cancel requested{who}; the task stops at its next check"
    else:
        session.refresh(task)
        raise Conflict(f"task {task_id} has already {task.status}")
    session.add(TaskLog(task_id=task_id, level="warning", message=message))
    session.flush()
    session.refresh(task)
    return task


def requeue(session: Session, task_id: int, *, by: str | None = None) -> Task:
    """Queue a failed or cancelled task again (its handler decides where it picks up)."""
    task = get_task(session, task_id)
    again = {
        "status": TaskStatus.QUEUED,
        "cancel_requested": False,
        "finished_at": None,
        "error": None,
        "result": None,
        "attempts": 0,
        "worker_id": None,
        "heartbeat_at": None,
    }
    if not any(
        _updated(session, task_id, status, again)
        for status in (TaskStatus.FAILED, TaskStatus.CANCELLED)
    ):
        session.refresh(task)
        raise Conflict(
            f"task {task_id} is {task.status}; only a failed or cancelled one is retried"
        )
    who = f" by {by}" if by else ""
    session.add(TaskLog(task_id=task_id, level="warning", message=f"retried{who}"))
    session.flush()
    session.refresh(task)
    return task


def _updated(session: Session, task_id: int, status: TaskStatus, values: dict[str, Any]) -> bool:
    """Apply ``values`` only if the task is still in ``status``; True if it was."""
    result = session.execute(
        update(Task).where(col(Task.id) == task_id, col(Task.status) == status).values(values)
    )
    assert isinstance(result, CursorResult)
    return bool(result.rowcount)

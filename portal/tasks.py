"""Long work as persisted tasks: queued in the database, claimed by exactly one worker.

A worker claims a task with one UPDATE whose subquery picks the oldest claimable row
(on PostgreSQL with ``FOR UPDATE SKIP LOCKED``, so concurrent workers skip each other's
rows instead of waiting; SQLite serialises writers). While a task runs, its worker
heartbeats; a running task whose heartbeat is older than ``heartbeat_timeout`` belongs
to a dead worker and is claimed again, up to ``max_attempts`` claims.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import traceback
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.engine import Engine
from sqlmodel import Session, col

from portal.db import utcnow
from portal.errors import Conflict, InvalidInput, NotFound
from portal.models import Task, TaskLog, TaskStatus
from portal.settings import TaskSettings

log = logging.getLogger("paved.tasks")


class TaskCancelled(Exception):
    """Raised by a handler (or ``TaskContext.check_cancelled``) to stop a cancelled task."""


@dataclass(frozen=True)
class TaskHandler:
    """A kind of long work: ``run(ctx)`` does it and may return a JSON-able result dict."""

    kind: str
    run: Callable[[TaskContext], dict[str, Any] | None]
    title: str


# -- Services: the queue as other areas see it -----------------------------------------


def enqueue(
    session: Session,
    kind: str,
    *,
    title: str,
    params: dict[str, Any] | None = None,
    created_by: str | None = None,
) -> Task:
    """Queue work of ``kind``; it runs after the caller's transaction commits."""
    if not kind or "." not in kind:
        raise InvalidInput.for_field("kind", f"{kind!r} is not a task kind", "<plugin>.<verb>")
    task = Task(kind=kind, title=title, params=params or {}, created_by=created_by)
    session.add(task)
    session.flush()
    return task


def get_task(session: Session, task_id: int) -> Task:
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


def count_by_status(session: Session) -> dict[str, int]:
    rows = session.execute(select(col(Task.status), func.count()).group_by(col(Task.status)))
    return dict(rows.all())


def log_lines(
    session: Session, task_id: int, *, after: int = 0, limit: int = 1000
) -> list[TaskLog]:
    """Log lines of a task with an id greater than ``after``, oldest first."""
    query = (
        select(TaskLog)
        .where(col(TaskLog.task_id) == task_id, col(TaskLog.id) > after)
        .order_by(col(TaskLog.id))
        .limit(limit)
    )
    return list(session.scalars(query))


def request_cancel(session: Session, task_id: int, *, by: str | None = None) -> Task:
    """Cancel a queued task now; ask a running one to stop at its next check."""
    task = get_task(session, task_id)
    if TaskStatus(task.status).is_finished:
        raise Conflict(f"task {task_id} has already {task.status}")
    if task.status == TaskStatus.QUEUED:
        task.status = TaskStatus.CANCELLED
        task.finished_at = utcnow()
    task.cancel_requested = True
    session.add(TaskLog(task_id=task_id, level="warning", message=f"cancel requested by {by}"))
    session.add(task)
    return task


# -- Running tasks ---------------------------------------------------------------------


class TaskContext:
    """What a handler sees of its task; each write is its own short transaction."""

    def __init__(self, engine: Engine, task: Task, worker: Worker) -> None:
        assert task.id is not None
        self.engine = engine
        self.task_id: int = task.id
        self.params: dict[str, Any] = dict(task.params)
        self.attempt = task.attempts
        self._worker = worker

    def log(self, message: str, *, level: str = "info") -> None:
        """Append a line to the task's log; browsers following the task see it at once."""
        with Session(self.engine) as session:
            session.add(TaskLog(task_id=self.task_id, level=level, message=message))
            session.commit()

    def progress(self, done: int, total: int) -> None:
        with Session(self.engine) as session:
            session.execute(
                update(Task)
                .where(col(Task.id) == self.task_id)
                .values(progress_done=done, progress_total=total)
            )
            session.commit()

    def is_cancel_requested(self) -> bool:
        """True when someone asked to cancel, or when the worker is shutting down."""
        if self._worker.is_stopping:
            return True
        with Session(self.engine) as session:
            return bool(
                session.scalar(
                    select(col(Task.cancel_requested)).where(col(Task.id) == self.task_id)
                )
            )

    def check_cancelled(self) -> None:
        """Raise ``TaskCancelled`` if the task should stop; call it between steps."""
        if self.is_cancel_requested():
            raise TaskCancelled


class Worker:
    """Claims and runs tasks, one at a time, heartbeating while each runs."""

    def __init__(
        self,
        engine: Engine,
        handlers: Sequence[TaskHandler],
        settings: TaskSettings,
        *,
        worker_id: str | None = None,
    ) -> None:
        self.engine = engine
        self.handlers = {handler.kind: handler for handler in handlers}
        self.settings = settings
        self.worker_id = worker_id or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.current_task: int | None = None

    @property
    def is_stopping(self) -> bool:
        return self._stop.is_set()

    def request_stop(self) -> None:
        """Stop claiming new tasks; the running one is asked to stop at its next check."""
        self._stop.set()

    def _claimable(self, now: Any) -> Any:
        orphaned_since = now - timedelta(seconds=self.settings.heartbeat_timeout)
        return or_(
            col(Task.status) == TaskStatus.QUEUED,
            and_(
                col(Task.status) == TaskStatus.RUNNING,
                col(Task.heartbeat_at) < orphaned_since,
                col(Task.attempts) < self.settings.max_attempts,
            ),
        )

    def fail_exhausted(self) -> int:
        """Fail orphaned tasks that have used all their attempts; returns how many."""
        now = utcnow()
        orphaned_since = now - timedelta(seconds=self.settings.heartbeat_timeout)
        with Session(self.engine) as session:
            result = session.execute(
                update(Task)
                .where(
                    col(Task.status) == TaskStatus.RUNNING,
                    col(Task.heartbeat_at) < orphaned_since,
                    col(Task.attempts) >= self.settings.max_attempts,
                )
                .values(
                    status=TaskStatus.FAILED,
                    finished_at=now,
                    error=f"its worker stopped answering on each of "
                    f"{self.settings.max_attempts} attempts",
                )
            )
            session.commit()
            return int(getattr(result, "rowcount", 0) or 0)

    def claim(self) -> Task | None:
        """Take the oldest claimable task for this worker, or None if there is none."""
        now = utcnow()
        claimable = self._claimable(now)
        oldest = (
            select(col(Task.id))
            .where(claimable)
            .order_by(col(Task.id))
            .limit(1)
            .with_for_update(skip_locked=True)
            .scalar_subquery()
        )
        with Session(self.engine, expire_on_commit=False) as session:
            claimed = session.scalar(
                update(Task)
                .where(col(Task.id) == oldest, claimable)
                .values(
                    status=TaskStatus.RUNNING,
                    worker_id=self.worker_id,
                    heartbeat_at=now,
                    started_at=func.coalesce(Task.started_at, now),
                    attempts=Task.attempts + 1,
                )
                .returning(col(Task.id))
            )
            session.commit()
            if claimed is None:
                return None
            return session.get(Task, claimed)

    def run_once(self) -> bool:
        """Claim one task and run it to the end; False when there was nothing to do."""
        self.fail_exhausted()
        task = self.claim()
        if task is None:
            return False
        self._run(task)
        return True

    def _run(self, task: Task) -> None:
        assert task.id is not None
        self.current_task = task.id
        context = TaskContext(self.engine, task, self)
        beating = threading.Event()
        heartbeat = threading.Thread(
            target=self._heartbeat,
            args=(task.id, beating),
            name=f"heartbeat-{task.id}",
            daemon=True,
        )
        heartbeat.start()
        try:
            status, result, error = self._execute(task, context)
        finally:
            beating.set()
            heartbeat.join()
            self.current_task = None
        if status is None:  # the worker is stopping: hand the task to the next worker
            self._release(task.id)
            return
        self._finish(task.id, status, result, error)

    def _execute(
        self, task: Task, context: TaskContext
    ) -> tuple[TaskStatus | None, dict[str, Any] | None, str | None]:
        handler = self.handlers.get(task.kind)
        if handler is None:
            message = (
                f"no handler for tasks of kind {task.kind!r}; expected a plugin that "
                "provides it to be installed and enabled"
            )
            context.log(message, level="error")
            return TaskStatus.FAILED, None, message
        if task.attempts > 1:
            context.log(f"resumed by {self.worker_id} (attempt {task.attempts})", level="warning")
        try:
            result = handler.run(context)
        except TaskCancelled:
            if self.is_stopping:
                context.log("worker stopping; the task goes back to the queue", level="warning")
                return None, None, None
            context.log("cancelled", level="warning")
            return TaskStatus.CANCELLED, None, None
        except Exception as exc:
            log.exception("task %s (%s) failed", task.id, task.kind)
            context.log("".join(traceback.format_exception(exc)).rstrip(), level="error")
            return TaskStatus.FAILED, None, f"{type(exc).__name__}: {exc}"
        return TaskStatus.SUCCEEDED, result, None

    def _heartbeat(self, task_id: int, done: threading.Event) -> None:
        while not done.wait(self.settings.heartbeat_interval):
            with Session(self.engine) as session:
                session.execute(
                    update(Task)
                    .where(col(Task.id) == task_id, col(Task.worker_id) == self.worker_id)
                    .values(heartbeat_at=utcnow())
                )
                session.commit()

    def _finish(
        self, task_id: int, status: TaskStatus, result: dict[str, Any] | None, error: str | None
    ) -> None:
        with Session(self.engine) as session:
            session.execute(
                update(Task)
                # Only the worker that holds the task may finish it.
                .where(
                    col(Task.id) == task_id,
                    col(Task.worker_id) == self.worker_id,
                    col(Task.status) == TaskStatus.RUNNING,
                )
                .values(status=status, result=result, error=error, finished_at=utcnow())
            )
            session.commit()

    def _release(self, task_id: int) -> None:
        with Session(self.engine) as session:
            session.execute(
                update(Task)
                .where(col(Task.id) == task_id, col(Task.worker_id) == self.worker_id)
                .values(status=TaskStatus.QUEUED, worker_id=None, heartbeat_at=None)
            )
            session.commit()

    def run_forever(self) -> None:
        """Work until ``stop()``; a database hiccup is logged and retried, not fatal."""
        log.info("task worker %s started", self.worker_id)
        while not self._stop.is_set():
            try:
                ran = self.run_once()
            except Exception:
                log.exception("task worker %s could not claim work; retrying", self.worker_id)
                ran = False
            if not ran:
                self._stop.wait(self.settings.poll_interval)
        log.info("task worker %s stopped", self.worker_id)

    def start(self) -> None:
        self._thread = threading.Thread(target=self.run_forever, name="paved-worker", daemon=True)
        self._thread.start()

    def stop(self, *, grace: float = 10.0) -> None:
        """Stop claiming; give the running task ``grace`` seconds, then requeue it."""
        self.request_stop()
        if self._thread is not None:
            self._thread.join(grace)
            if self._thread.is_alive() and self.current_task is not None:
                log.warning("task %s did not stop in %ss; requeued", self.current_task, grace)
                self._release(self.current_task)
            self._thread = None

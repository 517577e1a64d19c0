"""Running tasks: a worker claims one task at a time and heartbeats while it runs.

A worker claims a task with one UPDATE whose subquery picks the oldest claimable row
(on PostgreSQL with ``FOR UPDATE SKIP LOCKED``, so concurrent workers skip each other's
rows instead of waiting; SQLite serialises writers). It only claims kinds it has a
handler for, so workers with different plugins can share one queue. While a task runs,
its worker heartbeats; a running task whose heartbeat is older than
``heartbeat_timeout`` belongs to a dead worker and is claimed again, up to
``max_attempts`` claims. Every write after the claim names the worker, so a worker that
lost its claim can no longer change the task.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import traceback
import uuid
from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import Any, TypeVar

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.engine import CursorResult, Engine
from sqlmodel import Session, col

from portal import audit
from portal.actions import Action
from portal.auth.identity import Identity
from portal.db import utcnow
from portal.errors import EngineUnavailable, PavedError
from portal.gate import Authority, Resource, denial
from portal.models import Task, TaskLog, TaskStatus
from portal.plugins import Plugins
from portal.settings import Settings, TaskSettings
from portal.tasks import TaskCancelled, TaskFailed, TaskHandler

log = logging.getLogger("paved.tasks")
Done = TypeVar("Done")


class TaskContext:
    """What a handler sees of its task; each write is its own short transaction."""

    def __init__(self, engine: Engine, task: Task, worker: Worker) -> None:
        assert task.id is not None
        self.engine = engine
        # The portal's settings (None only for a worker built without them, as in tests).
        self.settings: Settings | None = worker.portal_settings
        self.task_id: int = task.id
        self.params: dict[str, Any] = dict(task.params)
        self.attempt = task.attempts
        self.claim_lost = threading.Event()
        self._worker = worker

    def log(
        self,
        message: str,
        *,
        level: str = "info",
        step: str | None = None,
        step_status: str | None = None,
    ) -> None:
        """Append a line to the task's log (about ``step``, if the work has steps, and saying
        its new ``step_status`` when it changes); browsers following the task see it at once."""
        with Session(self.engine) as session:
            session.add(
                TaskLog(
                    task_id=self.task_id,
                    level=level,
                    message=message,
                    step=step,
                    step_status=step_status,
                )
            )
            session.commit()

    def progress(self, done: int, total: int) -> None:
        """Record that ``done`` of ``total`` steps are finished (shown as a progress bar)."""
        with Session(self.engine) as session:
            session.execute(
                update(Task)
                .where(col(Task.id) == self.task_id)
                .values(progress_done=done, progress_total=total)
            )
            session.commit()

    def is_cancel_requested(self) -> bool:
        """True when someone asked to cancel, the worker is stopping, or the claim was lost."""
        if self._worker.is_stopping or self.claim_lost.is_set():
            return True
        with Session(self.engine) as session:
            query = select(col(Task.cancel_requested)).where(col(Task.id) == self.task_id)
            return bool(session.scalar(query))

    @property
    def plugins(self) -> Plugins | None:
        """The plugins of this worker's portal (None for a worker built without them)."""
        authority = self._worker.authority
        return authority.plugins if authority is not None else None

    def check_cancelled(self) -> None:
        """Raise ``TaskCancelled`` if the task should stop; call it between steps."""
        if self.is_cancel_requested():
            raise TaskCancelled

    def act(
        self,
        action: Action,
        identity: Identity,
        resource: Resource | None,
        work: Callable[[Session], Done],
    ) -> Done:
        """Do ``work`` as ``identity`` (the person who asked for the task): decided by the
        policy as if they had asked, and audited in the same transaction as the work.

        A denial raises ``Denied`` with the policy's reasons and is audited; so is work
        that fails (nothing of it is kept).
        """
        authority = self._worker.authority
        if authority is None:
            raise EngineUnavailable(
                f"this worker has no policy engine, so it cannot {action.name} for anyone"
            )
        decision = authority.decide(action, identity, resource)
        event: dict[str, Any] = {
            "actor": identity.ref,
            "action": action.name,
            "resource": resource.ref if resource else None,
            "reasons": decision.reasons,
        }
        detail: dict[str, Any] = {"task": self.task_id, "via": "task"}
        if not decision.allow:
            audit.append_alone(self.engine, **event, allowed=False, outcome="denied", detail=detail)
            raise denial(action, decision)
        try:
            with Session(self.engine) as session:
                done = work(session)
                audit.append_event(
                    session, **event, allowed=True, outcome="succeeded", detail=detail
                )
                session.commit()
        except Exception as exc:
            error = exc.detail if isinstance(exc, PavedError) else type(exc).__name__
            audit.append_alone(
                self.engine,
                **event,
                allowed=True,
                outcome="failed",
                detail={**detail, "error": str(error)[:500]},
            )
            raise
        return done


def _rowcount(result: Any) -> int:
    assert isinstance(result, CursorResult)
    return int(result.rowcount or 0)


class Worker:
    """Claims and runs tasks, one at a time, heartbeating while each runs."""

    def __init__(
        self,
        engine: Engine,
        handlers: Sequence[TaskHandler],
        settings: TaskSettings,
        *,
        worker_id: str | None = None,
        portal_settings: Settings | None = None,
        authority: Authority | None = None,
    ) -> None:
        self.engine = engine
        # Decides what tasks do for the people who started them (``TaskContext.act``).
        self.authority = authority
        self.handlers = {handler.kind: handler for handler in handlers}
        self.settings = settings
        # The whole portal's settings, for handlers that need more than the task settings.
        self.portal_settings = portal_settings
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

    def _now(self) -> Any:
        # On PostgreSQL the database's clock decides, so workers on hosts whose clocks
        # disagree still agree on which heartbeats are stale. SQLite is one machine.
        return func.now() if self.engine.dialect.name == "postgresql" else utcnow()

    def _orphaned(self) -> Any:
        stale_before = self._now() - timedelta(seconds=self.settings.heartbeat_timeout)
        return and_(col(Task.status) == TaskStatus.RUNNING, col(Task.heartbeat_at) < stale_before)

    def _claimable(self) -> Any:
        return and_(
            col(Task.kind).in_(sorted(self.handlers)),
            col(Task.cancel_requested).is_(False),
            or_(
                col(Task.status) == TaskStatus.QUEUED,
                and_(self._orphaned(), col(Task.attempts) < self.settings.max_attempts),
            ),
        )

    def settle(self) -> int:
        """Finish tasks nobody should run again; returns how many were settled.

        Orphans that used all their attempts fail; queued or orphaned tasks someone asked
        to cancel are cancelled.
        """
        now = self._now()
        with Session(self.engine) as session:
            exhausted = session.execute(
                update(Task)
                .where(self._orphaned(), col(Task.attempts) >= self.settings.max_attempts)
                .values(
                    status=TaskStatus.FAILED,
                    finished_at=now,
                    error=f"its worker stopped answering on each of "
                    f"{self.settings.max_attempts} attempts",
                )
            )
            cancelled = session.execute(
                update(Task)
                .where(
                    col(Task.cancel_requested).is_(True),
                    or_(col(Task.status) == TaskStatus.QUEUED, self._orphaned()),
                )
                .values(status=TaskStatus.CANCELLED, finished_at=now)
            )
            session.commit()
        return _rowcount(exhausted) + _rowcount(cancelled)

    def claim(self) -> Task | None:
        """Take the oldest claimable task for this worker, or None if there is none."""
        if not self.handlers:
            return None
        now = self._now()
        oldest = (
            select(col(Task.id))
            .where(self._claimable())
            .order_by(col(Task.id))
            .limit(1)
            .with_for_update(skip_locked=True)
            .scalar_subquery()
        )
        with Session(self.engine, expire_on_commit=False) as session:
            claimed = session.scalar(
                update(Task)
                .where(col(Task.id) == oldest, self._claimable())
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

    def may_have_work(self) -> bool:
        """Whether any task waits or was left by a dead worker: one read. An idle worker
        asks every ``poll_interval``, and settling and claiming are writes (transactions,
        and on SQLite the database's one write lock) that slow the requests beside it."""
        waiting = or_(col(Task.status) == TaskStatus.QUEUED, self._orphaned())
        with self.engine.connect() as connection:
            return connection.scalar(select(col(Task.id)).where(waiting).limit(1)) is not None

    def run_once(self) -> bool:
        """Claim one task and run it to the end; False when there was nothing to do."""
        if not self.may_have_work():
            return False
        self.settle()
        task = self.claim()
        if task is None:
            return False
        self._run(task)
        return True

    def _run(self, task: Task) -> None:
        assert task.id is not None
        self.current_task = task.id
        context = TaskContext(self.engine, task, self)
        done = threading.Event()
        heartbeat = threading.Thread(
            target=self._heartbeat,
            args=(context, done),
            name=f"heartbeat-{task.id}",
            daemon=True,
        )
        heartbeat.start()
        try:
            outcome = self._execute(task, context)
        finally:
            done.set()
            heartbeat.join()
            self.current_task = None
        if context.claim_lost.is_set():
            log.warning("task %s: claim lost; another worker has it now", task.id)
        elif outcome is None:  # the worker is stopping: hand the task to the next worker
            self.release(task.id)
        else:
            self._finish(task.id, *outcome)

    def _execute(
        self, task: Task, context: TaskContext
    ) -> tuple[TaskStatus, dict[str, Any] | None, str | None] | None:
        handler = self.handlers[task.kind]
        if task.attempts > 1:
            context.log(f"resumed by {self.worker_id} (attempt {task.attempts})", level="warning")
        try:
            result = handler.run(context)
        except TaskFailed as exc:
            context.log(str(exc), level="error", step_status="failed")
            return TaskStatus.FAILED, None, str(exc)
        except TaskCancelled:
            if self.is_stopping:
                context.log("worker stopping; the task goes back to the queue", level="warning")
                return None
            context.log("cancelled", level="warning", step_status="cancelled")
            return TaskStatus.CANCELLED, None, None
        except Exception as exc:
            log.exception("task %s (%s) failed", task.id, task.kind)
            context.log("".join(traceback.format_exception(exc)).rstrip(), level="error")
            return TaskStatus.FAILED, None, f"{type(exc).__name__}: {exc}"
        return TaskStatus.SUCCEEDED, result, None

    def _heartbeat(self, context: TaskContext, done: threading.Event) -> None:
        """Keep the claim alive; a database hiccup is retried, a lost claim stops the task."""
        while not done.wait(self.settings.heartbeat_interval):
            try:
                with Session(self.engine) as session:
                    result = session.execute(
                        update(Task)
                        .where(self._held(context.task_id))
                        .values(heartbeat_at=self._now())
                    )
                    session.commit()
            except Exception:
                log.warning("task %s: heartbeat failed; retrying", context.task_id, exc_info=True)
                continue
            if _rowcount(result) == 0:
                context.claim_lost.set()
                return

    def _held(self, task_id: int) -> Any:
        """This worker still holds the task: only then may it write to it."""
        return and_(
            col(Task.id) == task_id,
            col(Task.worker_id) == self.worker_id,
            col(Task.status) == TaskStatus.RUNNING,
        )

    def _finish(
        self, task_id: int, status: TaskStatus, result: dict[str, Any] | None, error: str | None
    ) -> None:
        with Session(self.engine) as session:
            session.execute(
                update(Task)
                .where(self._held(task_id))
                .values(status=status, result=result, error=error, finished_at=self._now())
            )
            session.commit()

    def release(self, task_id: int) -> bool:
        """Hand a task this worker is running back to the queue; False if it no longer
        holds it (finished meanwhile, or claimed by another worker)."""
        with Session(self.engine) as session:
            result = session.execute(
                update(Task)
                .where(self._held(task_id))
                .values(status=TaskStatus.QUEUED, worker_id=None, heartbeat_at=None)
            )
            session.commit()
        return _rowcount(result) == 1

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
        if self._thread is None:
            return
        self._thread.join(grace)
        running = self.current_task
        if self._thread.is_alive() and running is not None and self.release(running):
            log.warning("task %s did not stop within %ss; requeued", running, grace)
        self._thread = None

"""Keeping the catalog current: a task that reads every registered location again, and a
scheduler that queues it every ``catalog.refresh_interval`` seconds.

The refresh is a persisted task (``catalog.refresh``), so it survives restarts, shows its
log live, and runs on whichever worker claims it. Each location is applied in its own
transaction: one that cannot be read keeps its entities and records why.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from catalog import service
from catalog.models import CatalogLocation
from portal import TaskContext, TaskHandler, tasks
from portal.models import Task, TaskStatus

KIND = "catalog.refresh"
log = logging.getLogger("paved.catalog")


def run_refresh(ctx: TaskContext) -> dict[str, Any]:
    """Read the locations again (all, or ``params.location_id``); log what each changed."""
    if ctx.settings is None:
        raise RuntimeError("this worker was started without the portal's settings")
    settings = ctx.settings.catalog
    with Session(ctx.engine) as session:
        ids = [location.id for location in service.list_locations(session)]
    wanted = ctx.params.get("location_id")
    if wanted is not None:
        ids = [location_id for location_id in ids if location_id == wanted]
    totals = {"locations": 0, "added": 0, "updated": 0, "orphaned": 0, "problems": 0}
    for done, location_id in enumerate(ids, start=1):
        ctx.check_cancelled()
        with Session(ctx.engine) as session:
            location = session.get(CatalogLocation, location_id)
            if location is None:
                continue  # removed meanwhile
            where = f"{location.type}:{location.target}"
            outcome = service.refresh_location(session, location, settings)
            session.commit()
        ctx.log(
            f"{where}: {outcome.added} added, {outcome.updated} updated, "
            f"{outcome.unchanged} unchanged, {outcome.orphaned} orphaned, "
            f"{outcome.problems} problems",
            level="warning" if outcome.problems else "info",
        )
        ctx.progress(done, len(ids))
        totals["locations"] += 1
        totals["added"] += outcome.added
        totals["updated"] += outcome.updated
        totals["orphaned"] += outcome.orphaned
        totals["problems"] += outcome.problems
    return totals


HANDLER = TaskHandler(KIND, run_refresh, title="Refresh the catalog")


def queue_refresh(session: Session, *, by: str, location_id: str | None = None) -> Task | None:
    """Queue a refresh unless one is already waiting or running; the queued one, or None."""
    pending = session.exec(
        select(Task).where(
            col(Task.kind) == KIND,
            col(Task.status).in_([TaskStatus.QUEUED, TaskStatus.RUNNING]),
        )
    ).first()
    if pending is not None:
        return None
    params = {"location_id": location_id} if location_id else {}
    return tasks.enqueue(session, KIND, title="Refresh the catalog", params=params, created_by=by)


class RefreshScheduler:
    """Queues a refresh every ``interval`` seconds while the portal runs."""

    def __init__(self, engine: Engine, interval: float) -> None:
        self.engine, self.interval = engine, interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="catalog-refresh", daemon=True)

    def start(self) -> None:
        if self.interval > 0:
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(5)

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                with Session(self.engine) as session:
                    queue_refresh(session, by="catalog.refresh_interval")
                    session.commit()
            except Exception:
                # Logged and retried at the next interval: a database blip must not end it.
                log.exception("could not queue the catalog refresh")

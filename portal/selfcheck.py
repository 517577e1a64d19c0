"""The ``portal.selfcheck`` task: checks this installation step by step, logging each."""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import text
from sqlmodel import Session

from portal import schema
from portal.shell import missing_vendor_files
from portal.tasks import TaskHandler
from portal.worker import TaskContext

KIND = "portal.selfcheck"


def run_selfcheck(ctx: TaskContext) -> dict[str, Any]:
    """Database round trip, schema revision and front-end files, with timings."""
    steps = [
        ("database round trip", _database_round_trip),
        ("schema at the newest revision", _schema_at_head),
        ("front-end libraries built", _vendor_files),
    ]
    findings: dict[str, Any] = {}
    for done, (label, step) in enumerate(steps):
        ctx.check_cancelled()
        started = time.perf_counter()
        finding = step(ctx)
        elapsed = (time.perf_counter() - started) * 1000
        ctx.log(f"{label}: {finding} ({elapsed:.1f} ms)")
        findings[label] = finding
        ctx.progress(done + 1, len(steps))
    return findings


def _database_round_trip(ctx: TaskContext) -> str:
    with Session(ctx.engine) as session:
        session.execute(text("SELECT 1"))
    return f"ok ({ctx.engine.dialect.name})"


def _schema_at_head(ctx: TaskContext) -> str:
    current, head = schema.current_revision(ctx.engine), schema.head_revision()
    if current != head:
        raise RuntimeError(f"schema at {current}, expected {head}: run `paved db upgrade`")
    return f"ok (revision {current})"


def _vendor_files(ctx: TaskContext) -> str:
    # Pages still work without them (plain HTML), so this warns instead of failing.
    missing = missing_vendor_files()
    if missing:
        ctx.log(f"missing {', '.join(missing)}: run `make web`", level="warning")
        return "missing"
    return "ok"


HANDLER = TaskHandler(KIND, run_selfcheck, title="Check this installation")

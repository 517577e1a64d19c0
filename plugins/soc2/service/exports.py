"""Evidence exports: a period asked for, checked, gathered from every collector in a task,
written as a signed pack, and handed out only while its file is unchanged."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from plugins.soc2 import actions
from plugins.soc2.models import EvidenceExport
from plugins.soc2.pack import (
    Gathered,
    evidence_document,
    generated_at,
    write_pack,
)
from plugins.soc2.signing import signing_key
from portal import (
    Conflict,
    Identity,
    InvalidInput,
    NotFound,
    TaskCancelled,
    TaskContext,
    TaskFailed,
    tasks,
)
from portal.audit import append_alone, append_event, events_in_order, segment_between
from portal.db import utcnow
from portal.evidence import EvidenceCollector, EvidencePeriod
from portal.plugins import Plugins
from portal.settings import Settings

log = logging.getLogger(__name__)
TASK_KIND = "soc2.export"
COLLECTORS_HOOK = "paved_evidence_collectors"
EXPORT_ACTION = actions.EVIDENCE_EXPORT.name
DOWNLOAD_ACTION = actions.EVIDENCE_READ.name


def list_collectors(plugins: Plugins | None, settings: Settings) -> list[EvidenceCollector]:
    """Every collector the plugins contribute, by name; a name already taken degrades the
    second plugin (its evidence would overwrite the first's files)."""
    found: dict[str, EvidenceCollector] = {}
    if plugins is None:
        return []
    for contribution in plugins.collect(COLLECTORS_HOOK, EvidenceCollector, settings=settings):
        collector: EvidenceCollector = contribution.item
        if collector.name in found:
            plugins.degrade(contribution.plugin, f"evidence collector {collector.name!r} is taken")
            continue
        found[collector.name] = collector
    return sorted(found.values(), key=lambda collector: collector.name)


def check_order(start: date, end: date) -> None:
    if end < start:
        raise InvalidInput.for_field(
            "to", f"{end} is before from ({start})", "a last day on or after the first"
        )


def check_period(session: Session, start: date, end: date, settings: Settings) -> None:
    """Refuse a period that ends before it starts, is longer than ``soc2.max_period_days``,
    or in which the audit log holds nothing to show."""
    check_order(start, end)
    days = (end - start).days + 1
    limit = settings.soc2.max_period_days
    if days > limit:
        raise InvalidInput.for_field(
            "to", f"the period is {days} days long", f"at most {limit} days (soc2.max_period_days)"
        )
    if start > utcnow().date():
        raise InvalidInput.for_field("from", f"{start} is in the future", "a day up to today")
    period = EvidencePeriod(start, end, session.get_bind(), settings)  # type: ignore[arg-type]
    if segment_between(session, period.since, period.until) is None:
        raise InvalidInput.for_field(
            "from",
            f"the audit log holds no events from {start} to {end}",
            "a period in which the portal was used",
        )


def request_export(
    session: Session, start: date, end: date, settings: Settings, *, by: Identity
) -> EvidenceExport:
    """Check the period and queue its export; the task writes the pack."""
    check_period(session, start, end, settings)
    export = EvidenceExport(start=start, end=end, requested_by=by.ref)
    session.add(export)
    session.flush()
    task = tasks.enqueue(
        session,
        TASK_KIND,
        title=f"Evidence pack, {start} to {end}",
        params={"export_id": export.id},
        created_by=by.ref,
    )
    export.task_id = task.id
    return export


def gather(
    collectors: list[EvidenceCollector],
    period: EvidencePeriod,
    on_collector: Callable[[int, Gathered], None] | None = None,
) -> list[Gathered]:
    """Each collector's evidence; one that raises is kept as failed, with its error."""
    gathered = []
    for done, collector in enumerate(collectors, start=1):
        try:
            gathered.append(Gathered(collector, collector.collect(period)))
        except Exception as exc:  # a plugin's collector: say which, gather the others
            log.warning("evidence collector %s failed", collector.name, exc_info=True)
            gathered.append(Gathered(collector, None, str(exc) or type(exc).__name__))
        if on_collector is not None:
            on_collector(done, gathered[-1])
    return gathered


def run_export(ctx: TaskContext) -> dict[str, Any]:
    """The ``soc2.export`` task: gather every collector's evidence, write the audit chain
    segment and sign the manifest; the export and the audit log say how it went."""
    settings = ctx.settings or Settings()
    export_id = int(ctx.params["export_id"])
    with Session(ctx.engine, expire_on_commit=False) as session:
        export = session.get(EvidenceExport, export_id)
        if export is None:
            raise TaskFailed(f"evidence export {export_id} no longer exists")
        export.status = "running"
        session.commit()
    period = EvidencePeriod(export.start, export.end, ctx.engine, settings)
    try:
        written = _write(ctx, export, period, settings)
    except TaskCancelled:
        _finish(ctx, export, status="failed", error="cancelled", outcome="failed")
        raise
    except Exception as exc:
        shown = str(exc) or type(exc).__name__
        _finish(ctx, export, status="failed", error=shown, outcome="failed")
        raise TaskFailed(f"the evidence pack could not be written: {shown}") from exc
    _finish(
        ctx,
        export,
        status="succeeded",
        outcome="succeeded",
        file_name=written.path.name,
        bytes=written.bytes,
        sha256=written.sha256,
        manifest_sha256=written.manifest_sha256,
        events=written.events,
        controls={control.id: control.status for control in written.controls},
    )
    ctx.log(
        f"Pack written: {written.bytes:,} bytes, {written.events:,} audit events, "
        f"SHA-256 {written.sha256}."
    )
    return {"export_id": export_id, "sha256": written.sha256, "events": written.events}


def _write(
    ctx: TaskContext, export: EvidenceExport, period: EvidencePeriod, settings: Settings
) -> Any:
    collectors = list_collectors(ctx.plugins, settings)
    ctx.log(
        f"Gathering evidence from {len(collectors)} collectors, {period.start} to {period.end}."
    )
    steps = len(collectors) + 1

    def reported(done: int, item: Gathered) -> None:
        collector = item.collector
        if item.evidence is None:
            ctx.log(f"{collector.name}: could not be gathered: {item.error}", level="error")
        else:
            exceptions = len(item.evidence.exceptions)
            ctx.log(
                f"{collector.name}: {len(item.evidence.rows)} rows"
                + (f", {exceptions} exceptions" if exceptions else "")
            )
        ctx.progress(done, steps)
        ctx.check_cancelled()

    gathered = gather(collectors, period, reported)
    header = {
        "portal": settings.base_url,
        "period": {"from": period.start.isoformat(), "to": period.end.isoformat()},
        "generated_at": generated_at(),
        "generated_by": export.requested_by,
        "export_id": export.id,
    }
    target = settings.evidence_dir / f"evidence-{period.start}-{period.end}-{export.id}.zip"
    ctx.log("Writing the audit chain segment and signing the manifest.")
    with Session(ctx.engine) as session:
        segment = segment_between(session, period.since, period.until)
        first, last = segment if segment is not None else (1, 0)
        written = write_pack(
            target,
            header=header,
            gathered=gathered,
            events=events_in_order(session, after=first - 1, through=last),
            key=signing_key(settings),
        )
    ctx.progress(steps, steps)
    return written


def _finish(ctx: TaskContext, export: EvidenceExport, *, outcome: str, **values: Any) -> None:
    """Record how the export ended, with its audit event, in one transaction."""
    with Session(ctx.engine) as session:
        stored = session.get(EvidenceExport, export.id)
        assert stored is not None
        for name, value in values.items():
            setattr(stored, name, value)
        stored.finished_at = utcnow()
        append_event(
            session,
            actor=export.requested_by,
            action=EXPORT_ACTION,
            allowed=True,
            outcome=outcome,
            resource=f"evidence-export:{export.id}",
            detail={
                "from": export.start.isoformat(),
                "to": export.end.isoformat(),
                "task": ctx.task_id,
                **{k: v for k, v in values.items() if k in ("sha256", "events", "error")},
            },
        )
        session.commit()


def list_exports(session: Session, *, limit: int = 50) -> list[EvidenceExport]:
    return list(
        session.exec(
            select(EvidenceExport).order_by(col(EvidenceExport.id).desc()).limit(limit)
        ).all()
    )


def latest_pack(session: Session) -> EvidenceExport | None:
    """The newest export that wrote its pack: the controls' status comes from it."""
    return session.exec(
        select(EvidenceExport)
        .where(col(EvidenceExport.status) == "succeeded")
        .order_by(col(EvidenceExport.id).desc())
        .limit(1)
    ).first()


def get_export(session: Session, export_id: int) -> EvidenceExport:
    export = session.get(EvidenceExport, export_id)
    if export is None:
        raise NotFound(f"evidence export {export_id} not found")
    return export


def open_pack(
    session: Session, export_id: int, settings: Settings, *, by: Identity
) -> tuple[EvidenceExport, Path]:
    """The pack's file, once it is checked to be the one the export wrote; the download
    is audited."""
    export = get_export(session, export_id)
    if export.status != "succeeded" or export.file_name is None:
        raise Conflict(f"evidence export {export_id} is {export.status}; it has no pack yet")
    path = settings.evidence_dir / export.file_name
    found = _sha256(path) if path.is_file() else None
    if found != export.sha256:
        problem = "is missing" if found is None else "was changed after it was written"
        append_alone(
            session.get_bind(),  # type: ignore[arg-type]
            actor=by.ref,
            action=DOWNLOAD_ACTION,
            allowed=True,
            outcome="failed",
            resource=f"evidence-export:{export_id}",
            reasons=[f"the pack {problem}"],
        )
        raise Conflict(f"the pack of evidence export {export_id} {problem}; export it again")
    append_event(
        session,
        actor=by.ref,
        action=DOWNLOAD_ACTION,
        allowed=True,
        outcome="succeeded",
        resource=f"evidence-export:{export_id}",
        detail={"download": export.file_name, "sha256": export.sha256},
    )
    return export, path


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def live_evidence(
    plugins: Plugins | None,
    engine: Engine,
    settings: Settings,
    name: str,
    start: date,
    end: date,
) -> dict[str, Any]:
    """One collector's evidence for a period, gathered now, as a pack's JSON file holds it."""
    collectors = {c.name: c for c in list_collectors(plugins, settings)}
    if name not in collectors:
        raise NotFound(
            f"there is no evidence collector {name!r}; known: {', '.join(sorted(collectors))}"
        )
    check_order(start, end)
    period = EvidencePeriod(start, end, engine, settings)
    (item,) = gather([collectors[name]], period)
    header = {"period": {"from": start.isoformat(), "to": end.isoformat()}}
    return evidence_document(item, header)

"""Scanning datasets for personal data: a scan is asked for (a Dataset entity's files, or a
sample someone uploads), a task reads a sample of the rows and runs Presidio over each
column, and the findings are stored with the scan. The latest completed scan of a dataset
is what its page shows and what the production policy decides on (``pii_scans``).

A dataset's ``spec.location`` is a file or a folder of CSV or Parquet files on the
portal's machine: an absolute path, a ``file:`` URI, or a path relative to the catalog file
that describes it. Only files under the catalog's file roots and ``pii.data_roots`` are
read. An uploaded sample is kept under the data directory until its scan has run, then
deleted: only masked examples are stored.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from sqlmodel import Session, col, select

from catalog import service as catalog
from catalog.models import CatalogEntity
from catalog.readers import allowed_roots
from catalog.refs import parse_ref, ref_of
from plugins.pii import scanner, tables
from plugins.pii.models import PiiScan, ScanOut
from portal import Identity, Resource, Settings, TaskContext, TaskFailed, tasks
from portal.db import utcnow
from portal.errors import InvalidInput, NotFound, PavedError
from portal.models import Task, TaskStatus

TASK_KIND = "pii.scan"
MANAGED_BY = "backstage.io/managed-by-location"
CLEAN = "clean"
PII_FOUND = "pii_found"


# -- What is scanned -----------------------------------------------------------------------


def dataset_entity(session: Session, ref: str) -> CatalogEntity:
    """The Dataset entity ``ref`` names (kind ``dataset`` when it names none)."""
    parsed = parse_ref(ref, default_kind="dataset", field="dataset")
    if parsed.kind != "dataset":
        raise InvalidInput.for_field(
            "dataset",
            f"{ref} is a {parsed.kind}",
            "a Dataset's entity ref, e.g. dataset:default/churn-train",
        )
    return catalog.get_entity(session, parsed)


def dataset_resource(entity: CatalogEntity) -> Resource:
    """A dataset as the policy sees it: its owner and classification."""
    spec = entity.body.get("spec") or {}
    return Resource(
        ref=ref_of(entity.body).text,
        kind="Dataset",
        owner=spec.get("owner"),
        facts={"classification": spec.get("classification")},
    )


def dataset_files(entity: CatalogEntity, settings: Settings) -> list[Path]:
    """The CSV or Parquet files at the dataset's location, or InvalidInput saying why they
    cannot be read."""
    spec = entity.body.get("spec") or {}
    location = str(spec.get("location") or "").strip()
    path = _location_path(entity, location)
    roots = [
        *allowed_roots(settings.catalog),
        *(root.resolve() for root in settings.pii.data_roots),
    ]
    if not any(path.is_relative_to(root) for root in roots):
        raise InvalidInput.for_field(
            "spec.location",
            f"{path} is outside the folders datasets may be read from",
            "a path under catalog.file_roots or pii.data_roots",
        )
    declared = spec.get("format")
    if path.is_file():
        tables.format_of(path, declared)
        return [path]
    if not path.is_dir():
        raise InvalidInput.for_field(
            "spec.location", f"{path} does not exist", "an existing file or folder"
        )
    found = sorted(
        child.resolve()
        for child in path.iterdir()
        if child.is_file()
        and child.suffix.lower() in tables.FORMATS
        # a link out of the allowed folders is not followed
        and any(child.resolve().is_relative_to(root) for root in roots)
    )
    if not found:
        raise InvalidInput.for_field(
            "spec.location",
            f"{path} holds no CSV or Parquet file",
            "a folder of .csv or .parquet files",
        )
    return found[: settings.pii.max_files]


def _location_path(entity: CatalogEntity, location: str) -> Path:
    parts = urlsplit(location)
    if parts.scheme == "file":
        return Path(unquote(parts.path)).resolve()
    if parts.scheme and len(parts.scheme) > 1:  # s3://, trino://... (not C:)
        raise InvalidInput.for_field(
            "spec.location",
            f"{location} is in {parts.scheme}, which this portal does not read",
            "a file or folder on the portal's machine; or upload a sample of the data",
        )
    path = Path(location)
    if path.is_absolute():
        return path.resolve()
    annotations = entity.body.get("metadata", {}).get("annotations") or {}
    origin = str(annotations.get(MANAGED_BY, ""))
    if not origin.startswith("file:"):
        raise InvalidInput.for_field(
            "spec.location",
            f"{location} is relative, and the dataset was not read from a file",
            "an absolute path, or a catalog file beside the data",
        )
    base = Path(origin.removeprefix("file:")).parent
    if any(folder.suffix == ".git" for folder in (base, *base.parents)):
        raise InvalidInput.for_field(
            "spec.location",
            f"{location} is inside the git repository {base}, which a scan does not read",
            "an absolute path to the data, or a sample of it uploaded",
        )
    return (base / path).resolve()


# -- Asking for a scan ---------------------------------------------------------------------


def start_scan(
    session: Session, entity: CatalogEntity, *, by: Identity, settings: Settings
) -> PiiScan:
    """Queue a scan of a dataset's files (checked now, so a location that cannot be read is
    refused before any task)."""
    files = dataset_files(entity, settings)
    ref = ref_of(entity.body).text
    location = str((entity.body.get("spec") or {}).get("location"))
    scan = PiiScan(dataset=ref, source=location, requested_by=by.ref, files=[str(p) for p in files])
    return _queue(session, scan, f"Scan {ref} for PII")


def start_upload_scan(
    session: Session,
    filename: str,
    content: bytes,
    *,
    entity: CatalogEntity | None,
    by: Identity,
    settings: Settings,
) -> PiiScan:
    """Queue a scan of an uploaded sample, kept until its scan has run."""
    name = Path(filename or "").name
    if not name:
        raise InvalidInput.for_field("file", "missing", "a CSV or Parquet file")
    tables.format_of(Path(name))
    if len(content) > settings.pii.max_upload_bytes:
        raise InvalidInput.for_field(
            "file",
            f"{name} is {len(content)} bytes, over the limit of {settings.pii.max_upload_bytes} "
            "(pii.max_upload_bytes)",
            "a smaller sample of the data",
        )
    if not content:
        raise InvalidInput.for_field("file", f"{name} is empty", "a CSV or Parquet file with rows")
    folder = uploads_dir(settings)
    folder.mkdir(parents=True, exist_ok=True)
    kept = folder / f"{uuid.uuid4().hex}{Path(name).suffix.lower()}"
    kept.write_bytes(content)
    scan = PiiScan(
        dataset=ref_of(entity.body).text if entity is not None else None,
        source=name,
        uploaded=True,
        requested_by=by.ref,
        files=[str(kept)],
    )
    try:
        return _queue(session, scan, f"Scan the sample {name} for PII")
    except BaseException:
        kept.unlink(missing_ok=True)
        raise


def uploads_dir(settings: Settings) -> Path:
    return settings.data_dir / "pii" / "uploads"


def _queue(session: Session, scan: PiiScan, title: str) -> PiiScan:
    session.add(scan)
    session.flush()
    task = tasks.enqueue(
        session, TASK_KIND, title=title, params={"scan": scan.id}, created_by=scan.requested_by
    )
    scan.task_id = task.id
    session.add(scan)
    return scan


# -- The task ------------------------------------------------------------------------------


def run_scan(ctx: TaskContext) -> dict[str, Any]:
    """Read a sample of the rows, run the analyzer over each column, store the findings."""
    settings = ctx.settings
    assert settings is not None, "scans need the portal's settings"
    scan_id = int(ctx.params["scan"])
    with Session(ctx.engine) as session:
        scan = get_scan(session, scan_id)
        scan.status = "running"
        session.add(scan)
        session.commit()
        files = [Path(name) for name in scan.files]
        shown = [scan.source] if scan.uploaded else None
    try:
        return _scan(ctx, scan_id, files, shown, settings)
    except PavedError as exc:
        why = _said(exc)
        _fail(ctx, scan_id, why)
        raise TaskFailed(why) from None
    except BaseException as exc:  # cancelled, or a failure of the analyzer: said, re-raised
        _fail(ctx, scan_id, f"stopped: {type(exc).__name__}: {exc}".rstrip(": "))
        raise
    finally:
        if shown is not None:
            for path in files:
                path.unlink(missing_ok=True)


def _scan(
    ctx: TaskContext, scan_id: int, files: list[Path], shown: list[str] | None, settings: Settings
) -> dict[str, Any]:
    limits = settings.pii
    ctx.log(f"reading a sample of up to {limits.sample_rows} rows from {len(files)} file(s)")
    try:
        sample = tables.read_sample(
            files,
            sample_rows=limits.sample_rows,
            max_rows=limits.max_rows,
            max_file_bytes=limits.max_file_bytes,
            names=shown,
        )
    except FileNotFoundError as exc:
        gone = shown[0] if shown else Path(str(exc.filename)).name
        raise InvalidInput.for_field("file", f"{gone} is gone", "the dataset's files") from None
    ctx.log(f"{len(sample.rows)} of {sample.rows_read} rows sampled, {len(sample.columns)} columns")
    analyzer = scanner.analyzer_for(limits)
    for note in analyzer.notes:
        ctx.log(note, level="warning")
    ctx.log(f"recognizers: {', '.join(analyzer.recognizers)}")
    found = []
    names = scanner.shown_names(sample.columns, analyzer, min_score=limits.min_score)
    for index, column in enumerate(names):
        ctx.check_cancelled()
        values = [row[index] for row in sample.rows]
        result = scanner.scan_column(column, values, analyzer, min_score=limits.min_score)
        found.append(result)
        if result.findings:
            types = ", ".join(f"{f.entity} in {f.count}" for f in result.findings)
            ctx.log(f"{column}: {types}")
        ctx.progress(index + 1, len(names))
    suggested = scanner.suggested_classification(found)
    with Session(ctx.engine) as session:
        scan = get_scan(session, scan_id)
        scan.status = "completed"
        scan.finished_at = utcnow()
        scan.files = sample.files
        scan.rows_read = sample.rows_read
        scan.rows_scanned = len(sample.rows)
        scan.complete = sample.complete
        scan.recognizers = analyzer.recognizers
        scan.ner_model = analyzer.ner_model
        scan.notes = analyzer.notes
        scan.columns = [column.as_dict() for column in found]
        scan.has_pii = suggested is not None
        scan.suggested_classification = suggested
        session.add(scan)
        session.commit()
    outcome = PII_FOUND if suggested else CLEAN
    ctx.log(f"scan {scan_id} completed: {outcome}")
    return {"scan": scan_id, "result": outcome}


def _said(exc: PavedError) -> str:
    """The error in a sentence for the scan's page: what was wrong and what was expected."""
    if exc.errors:
        return "; ".join(
            f"{problem.message}; expected {problem.expected}"
            if problem.expected
            else problem.message
            for problem in exc.errors
        )
    return exc.detail


def _fail(ctx: TaskContext, scan_id: int, why: str) -> None:
    ctx.log(why, level="error")
    with Session(ctx.engine) as session:
        scan = session.get(PiiScan, scan_id)
        if scan is None:
            return
        scan.status = "failed"
        scan.error = why
        scan.finished_at = utcnow()
        session.add(scan)
        session.commit()


# -- Reading scans -------------------------------------------------------------------------


def get_scan(session: Session, scan_id: int) -> PiiScan:
    scan = session.get(PiiScan, scan_id)
    if scan is None:
        raise NotFound(f"there is no PII scan {scan_id}")
    return scan


def list_scans(session: Session, *, dataset: str | None = None, limit: int = 50) -> list[PiiScan]:
    query = select(PiiScan).order_by(col(PiiScan.id).desc()).limit(limit)
    if dataset is not None:
        query = query.where(col(PiiScan.dataset) == dataset)
    return list(session.exec(query).all())


def latest_scan(session: Session, dataset: str) -> PiiScan | None:
    """The dataset's latest completed scan: a failed one does not hide the one before."""
    query = (
        select(PiiScan)
        .where(col(PiiScan.dataset) == dataset, col(PiiScan.status) == "completed")
        .order_by(col(PiiScan.id).desc())
        .limit(1)
    )
    return session.exec(query).first()


def latest_for(session: Session, ref: str) -> PiiScan:
    """The latest completed scan of the Dataset ``ref``; NotFound when it has none."""
    dataset = ref_of(dataset_entity(session, ref).body).text
    scan = latest_scan(session, dataset)
    if scan is None:
        raise NotFound(f"{dataset} has no completed PII scan")
    return scan


@dataclass(frozen=True)
class TabState:
    """What a Dataset's PII tab shows."""

    dataset: str
    spec: dict[str, Any]
    latest: ScanOut | None  # the latest completed scan
    pending: ScanOut | None  # one queued or running since
    failed: ScanOut | None  # one failed since


def tab_state(session: Session, ref: str) -> TabState:
    """The dataset's latest completed scan, and the one in progress or failed since. A scan
    whose task ended without running it (cancelled while queued) shows as failed."""
    entity = dataset_entity(session, ref)
    dataset = ref_of(entity.body).text
    latest = latest_scan(session, dataset)
    since = [
        _as_its_task_left_it(session, scan)
        for scan in list_scans(session, dataset=dataset, limit=20)
        if latest is None or (scan.id or 0) > (latest.id or 0)
    ]
    return TabState(
        dataset=dataset,
        spec=dict(entity.body.get("spec") or {}),
        latest=shown(latest) if latest else None,
        pending=next((s for s in since if s.status in ("queued", "running")), None),
        failed=next((s for s in since if s.status == "failed"), None),
    )


def _as_its_task_left_it(session: Session, scan: PiiScan) -> ScanOut:
    found = shown(scan)
    if scan.status not in ("queued", "running") or scan.task_id is None:
        return found
    task = session.get(Task, scan.task_id)
    if task is not None and not TaskStatus(task.status).is_finished:
        return found
    ended = task.status if task is not None else "gone"
    return found.model_copy(
        update={"status": "failed", "error": f"its task {scan.task_id} is {ended}"}
    )


def results_of(session: Session, datasets: Iterable[str]) -> dict[str, str]:
    """``{dataset: "clean" | "pii_found"}`` from each one's latest completed scan of its
    own files that read rows, in one query; datasets never scanned so are absent."""
    wanted = sorted(set(datasets))
    if not wanted:
        return {}
    query = (
        select(PiiScan.dataset, PiiScan.has_pii)
        .where(
            col(PiiScan.dataset).in_(wanted),
            col(PiiScan.status) == "completed",
            col(PiiScan.uploaded).is_(False),  # a sample someone chose clears nothing
            col(PiiScan.rows_scanned) > 0,
        )
        .order_by(col(PiiScan.id))
    )
    found: dict[str, str] = {}
    for dataset, has_pii in session.exec(query).all():
        if dataset is not None:
            found[dataset] = PII_FOUND if has_pii else CLEAN
    return found


def shown(scan: PiiScan) -> ScanOut:
    result = None
    if scan.status == "completed":
        result = PII_FOUND if scan.has_pii else CLEAN
    fields = scan.model_dump()
    if scan.uploaded:  # where the portal kept it is nobody's business
        fields["files"] = [scan.source]
    return ScanOut.model_validate(fields | {"result": result})

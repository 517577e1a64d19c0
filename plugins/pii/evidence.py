"""The PII plugin's SOC 2 evidence (C1.1): which datasets of the catalog were scanned for
personal data, what was found (entity types and counts, never values or examples), and
how each is classified."""

from __future__ import annotations

from collections import Counter
from typing import Any

from sqlmodel import Session, col, select

import catalog.service as catalog
from plugins.pii.models import PiiScan
from portal.db import as_utc
from portal.evidence import Evidence, EvidenceCollector, EvidencePeriod, as_row

UNCLASSIFIED = ("", "public", "none")


def _coverage(period: EvidencePeriod) -> Evidence:
    with Session(period.engine) as session:
        datasets = catalog.entities_of_kind(session, "Dataset", limit=5000)
        refs = [entity.ref for entity in datasets]
        scans = session.exec(
            select(PiiScan)
            .where(col(PiiScan.dataset).in_(refs), col(PiiScan.status) == "completed")
            .where(col(PiiScan.uploaded).is_(False), col(PiiScan.rows_scanned) > 0)
            .where(col(PiiScan.finished_at) < period.until)
            .order_by(col(PiiScan.id))
        ).all()
    latest = {scan.dataset: scan for scan in scans}  # ordered by id: the last one stays
    in_period = Counter(
        scan.dataset
        for scan in scans
        if as_utc(scan.finished_at or scan.requested_at) >= period.since
    )
    rows: list[dict[str, Any]] = []
    exceptions: list[str] = []
    for entity in sorted(datasets, key=lambda e: e.ref):
        spec = entity.body.get("spec", {})
        classification = str(spec.get("classification") or "")
        scan = latest.get(entity.ref)
        types = _types_found(scan) if scan else {}
        if scan is None:
            exceptions.append(f"{entity.ref} was never scanned for personal data")
        elif scan.has_pii and classification.lower() in UNCLASSIFIED:
            exceptions.append(
                f"{entity.ref} holds personal data ({', '.join(sorted(types))}) but is "
                f"classified as {classification or 'nothing'}"
            )
        rows.append(
            as_row(
                dataset=entity.ref,
                owner=spec.get("owner"),
                classification=classification or None,
                last_scanned=scan.finished_at if scan else None,
                scans_in_period=in_period.get(entity.ref, 0),
                rows_scanned=scan.rows_scanned if scan else None,
                complete=scan.complete if scan else None,
                personal_data=scan.has_pii if scan else None,
                types_found=[f"{name} ({count})" for name, count in sorted(types.items())],
            )
        )
    scanned = sum(1 for row in rows if row["last_scanned"])
    summary = {
        "datasets": len(rows),
        "scanned": scanned,
        "coverage_percent": round(100 * scanned / len(rows), 1) if rows else 100.0,
        "with_personal_data": sum(1 for row in rows if row["personal_data"]),
    }
    columns = [
        "dataset",
        "owner",
        "classification",
        "last_scanned",
        "scans_in_period",
        "rows_scanned",
        "complete",
        "personal_data",
        "types_found",
    ]
    return Evidence(columns, rows, summary, exceptions)


def _types_found(scan: PiiScan) -> dict[str, int]:
    """Entity types and how many sampled values held each: the examples stay out."""
    found: Counter[str] = Counter()
    for column in scan.columns:
        for finding in column.get("findings", []):
            found[str(finding["entity"])] += int(finding.get("count") or 0)
    return dict(found)


COLLECTOR = EvidenceCollector(
    "pii.coverage",
    "PII scan coverage of datasets",
    "Every Dataset of the catalog: when it was last scanned for personal data, the entity "
    "types found and how many sampled values held each (never the values), and its "
    "classification.",
    ("C1.1",),
    _coverage,
)

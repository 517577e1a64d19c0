"""Serving's SOC 2 evidence: every change to what production serves, with the approval it
stood on and who gave it (CC8.1), and the rollbacks, failures and alerts of every
environment (CC7.2)."""

from __future__ import annotations

from typing import Any

from sqlmodel import Session, col, select

from plugins.registry import service as registry
from plugins.serving.models import Deployment, DeploymentEvent
from portal.db import as_utc
from portal.evidence import Evidence, EvidenceCollector, EvidencePeriod, as_row

PRODUCTION = "production"
CHANGES = ("deploy", "canary", "percent", "promote", "rollback", "removed")
INCIDENTS = ("rollback", "failed", "alert")


def _events(
    session: Session, period: EvidencePeriod, kinds: tuple[str, ...]
) -> list[tuple[DeploymentEvent, Deployment]]:
    return [
        (event, deployment)
        for event, deployment in session.exec(
            select(DeploymentEvent, Deployment)
            .join(Deployment, col(Deployment.id) == col(DeploymentEvent.deployment_id))
            .where(col(DeploymentEvent.kind).in_(kinds))
            .where(col(DeploymentEvent.at) >= period.since, col(DeploymentEvent.at) < period.until)
            .order_by(col(DeploymentEvent.id))
        ).all()
    ]


def _production_changes(period: EvidencePeriod) -> Evidence:
    rows: list[dict[str, Any]] = []
    exceptions: list[str] = []
    with Session(period.engine) as session:
        for event, deployment in _events(session, period, CHANGES):
            if deployment.environment != PRODUCTION:
                continue
            version = event.canary_version if event.kind in ("canary", "percent") else None
            version = version or event.stable_version
            approval = None
            if version and event.kind != "removed":
                approval = registry.approval_standing(
                    session, deployment.model, version, as_utc(event.at)
                )
                if approval is None:
                    exceptions.append(
                        f"{deployment.name}: {event.kind} of {deployment.model} version "
                        f"{version} on {as_utc(event.at).date()} by {event.actor} had no "
                        "standing approval"
                    )
            rows.append(
                as_row(
                    at=event.at,
                    deployment=deployment.name,
                    model=deployment.model,
                    change=event.kind,
                    version=version,
                    canary_percent=event.canary_percent or None,
                    made_by=event.actor,
                    approved_by=approval.decided_by if approval else None,
                    approved_at=approval.decided_at if approval else None,
                    message=event.message,
                )
            )
    summary = {
        "changes": len(rows),
        "approved": sum(1 for row in rows if row["approved_by"]),
        "rollbacks": sum(1 for row in rows if row["change"] == "rollback"),
    }
    columns = [
        "at",
        "deployment",
        "model",
        "change",
        "version",
        "canary_percent",
        "made_by",
        "approved_by",
        "approved_at",
        "message",
    ]
    return Evidence(columns, rows, summary, exceptions)


def _incidents(period: EvidencePeriod) -> Evidence:
    with Session(period.engine) as session:
        found = _events(session, period, INCIDENTS)
        rows = [
            as_row(
                at=event.at,
                deployment=deployment.name,
                environment=deployment.environment,
                kind=event.kind,
                by=event.actor,
                message=event.message,
            )
            for event, deployment in found
        ]
    summary = {
        "incidents": len(rows),
        "rollbacks": sum(1 for row in rows if row["kind"] == "rollback"),
        "failures": sum(1 for row in rows if row["kind"] == "failed"),
        "alerts": sum(1 for row in rows if row["kind"] == "alert"),
    }
    return Evidence(["at", "deployment", "environment", "kind", "by", "message"], rows, summary)


COLLECTORS = [
    EvidenceCollector(
        "serving.production_changes",
        "Changes to production and their approvals",
        "Each deploy, canary, promotion, rollback and removal in production during the "
        "period, who made it, and the approval of the version it served (who gave it, when).",
        ("CC8.1",),
        _production_changes,
    ),
    EvidenceCollector(
        "serving.incidents",
        "Rollbacks, failures and alerts",
        "Every rollback, failed deploy and monitoring alert of a deployed model in the "
        "period, in every environment.",
        ("CC7.2",),
        _incidents,
    ),
]

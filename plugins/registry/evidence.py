"""The registry's SOC 2 evidence (CC8.1): every approval and rejection of a model version
for production in the period, who asked and who decided."""

from __future__ import annotations

from sqlmodel import Session

from plugins.registry import service
from portal.evidence import Evidence, EvidenceCollector, EvidencePeriod, as_row


def _approvals(period: EvidencePeriod) -> Evidence:
    with Session(period.engine) as session:
        decisions = service.decisions_between(session, period.since, period.until)
    rows, exceptions = [], []
    for decision in decisions:
        rows.append(
            as_row(
                decided_at=decision.decided_at,
                model=decision.model,
                version=decision.version,
                decision=decision.decision,
                registered_by=decision.requested_by,
                decided_by=decision.decided_by,
                comment=decision.comment,
            )
        )
        if decision.decided_by == decision.requested_by:
            exceptions.append(
                f"{decision.model} version {decision.version} was {decision.decision} by "
                f"{decision.decided_by}, who registered it"
            )
    summary = {
        "decisions": len(rows),
        "approved": sum(1 for d in decisions if d.decision == "approved"),
        "rejected": sum(1 for d in decisions if d.decision == "rejected"),
    }
    columns = [
        "decided_at",
        "model",
        "version",
        "decision",
        "registered_by",
        "decided_by",
        "comment",
    ]
    return Evidence(columns, rows, summary, exceptions)


COLLECTOR = EvidenceCollector(
    "registry.approvals",
    "Approvals of model versions for production",
    "Each team lead's decision on a model version in the period: the version, who "
    "registered it, who approved or rejected it, and why.",
    ("CC8.1",),
    _approvals,
)

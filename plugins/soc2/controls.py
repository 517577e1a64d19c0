"""The SOC 2 criteria Paved gathers evidence for, and how a control's status follows from
its evidence."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Control:
    id: str
    title: str
    criterion: str  # what the control asks, in the auditor's words
    shown_by: str  # what in Paved shows it


CONTROLS = [
    Control(
        "CC6.1",
        "Logical access security",
        "Access to information assets is restricted to authorised users through logical "
        "access controls.",
        "Every request passes sign-in and a policy decision; who holds which roles and API "
        "tokens, and how often the policy allowed and denied each action.",
    ),
    Control(
        "CC6.2",
        "Registration and removal of users",
        "New users are registered and authorised before access is granted; access is "
        "removed when it is no longer needed.",
        "Who signed in for the first time (joiners) and who left with access still held "
        "(leavers), and the quarterly access reviews.",
    ),
    Control(
        "CC6.3",
        "Role-based access and its review",
        "Access is granted, changed and removed by role, with least privilege and "
        "segregation of duties, and reviewed periodically.",
        "Roles and their actions, and each team lead's quarterly attestation of every "
        "member's access.",
    ),
    Control(
        "CC7.2",
        "Monitoring for anomalies",
        "System components are monitored for anomalies that indicate malicious acts, "
        "errors or failures, and the anomalies are analysed.",
        "The tamper-evident audit log of the period, checked whole; denials; rollbacks "
        "and incidents of models in production.",
    ),
    Control(
        "CC8.1",
        "Change management",
        "Changes to infrastructure, data, software and procedures are authorised, "
        "designed, tested, approved and implemented.",
        "Every change to production with the approval it needed and who gave it; the "
        "versions of the access policy in force.",
    ),
    Control(
        "C1.1",
        "Identification of confidential information",
        "Confidential information is identified and maintained to meet the entity's "
        "objectives related to confidentiality.",
        "Which datasets in the catalog were scanned for personal data, what was found "
        "(types and counts, never values) and their classification.",
    ),
]
CONTROL_IDS = [control.id for control in CONTROLS]

# A control's status: evidence that failed to be gathered weighs most, then exceptions.
SUPPORTED, ATTENTION, FAILED, MISSING = "supported", "attention", "failed", "missing"
STATUS_TEXT = {
    SUPPORTED: "Evidence supports it",
    ATTENTION: "Exceptions to look at",
    FAILED: "Evidence could not be gathered",
    MISSING: "No evidence",
}


def control_status(statuses: list[str]) -> str:
    """The status of a control from its evidence's statuses (each supported, attention
    or failed)."""
    if not statuses:
        return MISSING
    for status in (FAILED, ATTENTION):
        if status in statuses:
            return status
    return SUPPORTED

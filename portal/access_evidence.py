"""The core's SOC 2 evidence: who holds access (people, roles, API tokens), joiners and
leavers, how the policy decided, the policy versions in force, and the audit chain."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func
from sqlmodel import Session, col, or_, select

from portal import actions
from portal.audit import segment_between, verify_segment
from portal.db import as_utc
from portal.evidence import Evidence, EvidenceCollector, EvidencePeriod, as_row
from portal.models import ApiToken, AuditEvent
from portal.policy_versions import list_versions

SIGN_IN = actions.SESSION_CREATE.name


def _tokens(period: EvidencePeriod) -> Evidence:
    stale = timedelta(days=period.settings.soc2.stale_token_days)
    with Session(period.engine) as session:
        tokens = session.exec(
            select(ApiToken)
            .where(col(ApiToken.created_at) < period.until)
            .where(
                or_(col(ApiToken.revoked_at).is_(None), col(ApiToken.revoked_at) >= period.since)
            )
            .order_by(col(ApiToken.id))
        ).all()
    rows, exceptions = [], []
    for token in tokens:
        state = token_state(token, period.until)
        rows.append(
            as_row(
                id=token.id,
                name=token.name,
                user=token.user_ref,
                roles=list(token.roles),
                created_at=token.created_at,
                created_by=token.created_by,
                expires_at=token.expires_at,
                revoked_at=token.revoked_at,
                last_used_at=token.last_used_at,
                state=state,
            )
        )
        used = as_utc(token.last_used_at or token.created_at)
        if state == "active" and period.until - used > stale:
            exceptions.append(
                f"token {token.id} ({token.name}) of {token.user_ref} is still valid but was "
                f"last used {used.date()}, more than {stale.days} days before the period ended"
            )
    states = [row["state"] for row in rows]
    summary = {
        "tokens": len(rows),
        "active_at_end": states.count("active"),
        "revoked_in_period": states.count("revoked"),
        "stale": len(exceptions),
    }
    columns = [
        "id",
        "name",
        "user",
        "roles",
        "created_at",
        "created_by",
        "expires_at",
        "revoked_at",
        "last_used_at",
        "state",
    ]
    return Evidence(columns, rows, summary, exceptions)


def token_state(token: ApiToken, at: datetime) -> str:
    """``active``, ``expired`` or ``revoked``, as the token stood at ``at``."""
    if token.revoked_at is not None and as_utc(token.revoked_at) < at:
        return "revoked"
    if token.expires_at is not None and as_utc(token.expires_at) < at:
        return "expired"
    return "active"


def _people(period: EvidencePeriod) -> Evidence:
    """Everyone the audit log saw act up to the period's end: when they first signed in,
    when they were last seen, their roles at their last sign-in, and their valid tokens."""
    inactive = timedelta(days=period.settings.soc2.inactive_days)
    with Session(period.engine) as session:
        seen = last_seen(session, period.until)
        sign_ins = session.execute(
            select(col(AuditEvent.actor), func.min(AuditEvent.at), func.count())
            .where(col(AuditEvent.action) == SIGN_IN, col(AuditEvent.outcome) == "succeeded")
            .where(col(AuditEvent.at) < period.until)
            .group_by(col(AuditEvent.actor))
        ).all()
        in_period = dict(
            session.execute(
                select(col(AuditEvent.actor), func.count())
                .where(col(AuditEvent.action) == SIGN_IN, col(AuditEvent.outcome) == "succeeded")
                .where(col(AuditEvent.at) >= period.since, col(AuditEvent.at) < period.until)
                .group_by(col(AuditEvent.actor))
            ).all()
        )
        roles = roles_at_last_sign_in(session, period.until)
        tokens = valid_tokens(session, period.until)
    first_sign_in = {actor: as_utc(first) for actor, first, _ in sign_ins}
    rows: list[dict[str, Any]] = []
    exceptions: list[str] = []
    joiners = leavers = 0
    for actor, last in sorted(seen.items()):
        first = first_sign_in.get(actor)
        joined = first is not None and period.since <= first < period.until
        away = period.until - last > inactive
        joiners += joined
        if away and tokens.get(actor):
            leavers += 1
            exceptions.append(
                f"{actor} was last seen {last.date()}, more than {inactive.days} days before "
                f"the period ended, and still holds {tokens[actor]} valid API token(s)"
            )
        rows.append(
            as_row(
                person=actor,
                roles=roles.get(actor, []),
                first_sign_in=first,
                last_seen=last,
                sign_ins_in_period=in_period.get(actor, 0),
                valid_tokens=tokens.get(actor, 0),
                joiner=joined,
                inactive=away,
            )
        )
    summary = {
        "people": len(rows),
        "joiners": joiners,
        "inactive": sum(1 for row in rows if row["inactive"]),
        "leavers_with_access": leavers,
        "session_max_hours": period.settings.auth.session_max_hours,
    }
    columns = [
        "person",
        "roles",
        "first_sign_in",
        "last_seen",
        "sign_ins_in_period",
        "valid_tokens",
        "joiner",
        "inactive",
    ]
    return Evidence(columns, rows, summary, exceptions)


def roles_at_last_sign_in(
    session: Session, until: datetime, actors: Sequence[str] | None = None
) -> dict[str, list[str]]:
    """Each person's roles as their last sign-in before ``until`` recorded them."""
    latest = (
        select(func.max(AuditEvent.id))
        .where(col(AuditEvent.action) == SIGN_IN, col(AuditEvent.outcome) == "succeeded")
        .where(col(AuditEvent.at) < until)
        .group_by(col(AuditEvent.actor))
    )
    if actors is not None:
        latest = latest.where(col(AuditEvent.actor).in_(actors))
    events = session.exec(select(AuditEvent).where(col(AuditEvent.id).in_(latest))).all()
    return {event.actor: list(event.detail.get("roles") or []) for event in events}


def last_seen(
    session: Session, until: datetime, actors: Sequence[str] | None = None
) -> dict[str, datetime]:
    """When each person last appears in the audit log before ``until``."""
    query = (
        select(col(AuditEvent.actor), func.max(AuditEvent.at))
        .where(col(AuditEvent.at) < until)
        .group_by(col(AuditEvent.actor))
    )
    query = query.where(
        col(AuditEvent.actor).in_(actors)
        if actors is not None
        else col(AuditEvent.actor).startswith("user:")
    )
    return {actor: as_utc(at) for actor, at in session.execute(query).all()}


def valid_tokens(
    session: Session, at: datetime, users: Sequence[str] | None = None
) -> dict[str, int]:
    """How many API tokens each person held, valid at ``at``."""
    query = select(ApiToken).where(col(ApiToken.created_at) < at)
    if users is not None:
        query = query.where(col(ApiToken.user_ref).in_(users))
    held: dict[str, int] = defaultdict(int)
    for token in session.exec(query).all():
        if token_state(token, at) == "active":
            held[token.user_ref] += 1
    return dict(held)


def _decisions(period: EvidencePeriod) -> Evidence:
    with Session(period.engine) as session:
        counted = session.execute(
            select(col(AuditEvent.action), col(AuditEvent.outcome), func.count())
            .where(col(AuditEvent.at) >= period.since, col(AuditEvent.at) < period.until)
            .group_by(col(AuditEvent.action), col(AuditEvent.outcome))
        ).all()
    by_action: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for action, outcome, count in counted:
        by_action[action][outcome] += count
    rows = [
        {
            "action": action,
            "succeeded": outcomes["succeeded"],
            "failed": outcomes["failed"],
            "denied": outcomes["denied"],
        }
        for action, outcomes in sorted(by_action.items())
    ]
    summary = {
        "decisions": sum(sum(outcomes.values()) for outcomes in by_action.values()),
        "denied": sum(outcomes["denied"] for outcomes in by_action.values()),
        "actions": len(rows),
    }
    return Evidence(["action", "succeeded", "failed", "denied"], rows, summary)


def _policy_versions(period: EvidencePeriod) -> Evidence:
    """The versions in force during the period: the one in force when it began, and each
    one loaded during it."""
    with Session(period.engine) as session:
        versions = [v for v in list_versions(session) if v.first_loaded < period.until]
    before = [v for v in versions if v.first_loaded < period.since]
    shown = before[-1:] + [v for v in versions if v.first_loaded >= period.since]
    rows = []
    for earlier, version in zip([None, *shown], shown, strict=False):
        changed = _changed_files(earlier.files if earlier else None, version.files)
        rows.append(
            as_row(
                version=version.digest[:16],
                digest=version.digest,
                first_loaded=version.first_loaded,
                files=len(version.files),
                changed_files=changed,
            )
        )
    exceptions = [] if rows else ["no policy version was recorded before the period ended"]
    summary = {"versions_in_force": len(rows), "loaded_in_period": len(shown) - len(before[-1:])}
    columns = ["version", "digest", "first_loaded", "files", "changed_files"]
    return Evidence(columns, rows, summary, exceptions)


def _changed_files(before: dict[str, str] | None, after: dict[str, str]) -> list[str]:
    if before is None:
        return []
    names = sorted(set(before) | set(after))
    return [name for name in names if before.get(name) != after.get(name)]


def _audit_chain(period: EvidencePeriod) -> Evidence:
    with Session(period.engine) as session:
        segment = segment_between(session, period.since, period.until)
        if segment is None:
            return Evidence(
                ["day", "events", "denied", "failed"],
                [],
                {"events": 0},
                ["the audit log holds no events in this period"],
            )
        first, last = segment
        verification = verify_segment(session, first, last)
        # Days are counted here, not in SQL, so that they are UTC days on every database.
        moments = session.execute(
            select(col(AuditEvent.at), col(AuditEvent.outcome)).where(
                col(AuditEvent.id) >= first, col(AuditEvent.id) <= last
            )
        )
        days: dict[str, dict[str, Any]] = {}
        for at, outcome in moments:
            shown = as_utc(at).astimezone(UTC).date().isoformat()
            row = days.setdefault(shown, {"day": shown, "events": 0, "denied": 0, "failed": 0})
            row["events"] += 1
            if outcome in ("denied", "failed"):
                row[outcome] += 1
    summary = {
        "events": last - first + 1,
        "first_event": first,
        "last_event": last,
        "intact": verification.is_intact,
    }
    exceptions = (
        [] if verification.is_intact else [f"the audit chain is broken: {verification.problem}"]
    )
    return Evidence(
        ["day", "events", "denied", "failed"],
        sorted(days.values(), key=lambda r: r["day"]),
        summary,
        exceptions,
    )


COLLECTORS = [
    EvidenceCollector(
        "access.people",
        "People with access, joiners and leavers",
        "Everyone who signed in or acted up to the end of the period, with their roles at "
        "their last sign-in, who signed in for the first time in the period, and who was "
        "away long enough to be a leaver while still holding API tokens.",
        ("CC6.1", "CC6.2"),
        _people,
    ),
    EvidenceCollector(
        "access.tokens",
        "API tokens and their last use",
        "Every API token valid at some moment of the period: whose it is, its roles, when "
        "it expires, when it was revoked and last used.",
        ("CC6.1", "CC6.3"),
        _tokens,
    ),
    EvidenceCollector(
        "policy.decisions",
        "Policy decisions by action",
        "How many requests for each action succeeded, failed or were denied by the policy "
        "during the period.",
        ("CC6.1", "CC7.2"),
        _decisions,
    ),
    EvidenceCollector(
        "policy.versions",
        "Versions of the access policy",
        "Each version of the Rego policies and role data in force during the period, with "
        "the files that changed from the version before.",
        ("CC8.1", "CC6.3"),
        _policy_versions,
    ),
    EvidenceCollector(
        "audit.chain",
        "The audit log of the period",
        "The period's events in the tamper-evident audit log, per day, checked to be "
        "unchanged and unbroken; every event is in audit/events.jsonl.",
        ("CC7.2",),
        _audit_chain,
    ),
]

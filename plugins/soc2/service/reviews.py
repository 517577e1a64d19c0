"""Quarterly access reviews: each quarter, a team's lead attests, member by member, that
their access to the team is still needed; the attestations are evidence for CC6.2/CC6.3."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

import catalog.service as catalog
from catalog.refs import parse_ref
from catalog.relations import HAS_MEMBER
from plugins.soc2.models import AccessReview, MemberDecision
from portal import Conflict, Identity, InvalidInput
from portal import access_evidence as access
from portal.db import as_utc, utcnow
from portal.evidence import Evidence, EvidenceCollector, EvidencePeriod, as_row


@dataclass(frozen=True, order=True)
class Quarter:
    year: int
    number: int  # 1 to 4

    @classmethod
    def of(cls, day: date) -> Quarter:
        return cls(day.year, (day.month - 1) // 3 + 1)

    @classmethod
    def parse(cls, label: str) -> Quarter:
        try:
            year, number = label.split("-Q")
            quarter = cls(int(year), int(number))
        except ValueError:
            quarter = None
        if quarter is None or not 1 <= quarter.number <= 4:
            raise InvalidInput.for_field("quarter", f"{label!r} is not a quarter", "2026-Q4")
        return quarter

    @property
    def label(self) -> str:
        return f"{self.year}-Q{self.number}"

    @property
    def start(self) -> date:
        return date(self.year, 3 * self.number - 2, 1)

    @property
    def end(self) -> date:
        following = self.next()
        return date.fromordinal(following.start.toordinal() - 1)

    def next(self) -> Quarter:
        return Quarter(self.year + self.number // 4, self.number % 4 + 1)

    def previous(self) -> Quarter:
        return (
            Quarter(self.year - 1, 4) if self.number == 1 else Quarter(self.year, self.number - 1)
        )

    def __str__(self) -> str:
        return self.label


@dataclass(frozen=True)
class Member:
    """A member of a team as the reviewer sees them."""

    ref: str
    name: str
    roles: list[str]
    last_seen: datetime | None
    tokens: int


def team_members(session: Session, team: str) -> list[Member]:
    """The team's members in the catalog, with their roles at their last sign-in, when
    they were last seen and how many valid API tokens they hold."""
    relations = catalog.relations_by_source(session, [team]).get(team, [])
    refs = sorted({r["targetRef"] for r in relations if r["type"] == HAS_MEMBER})
    if not refs:
        return []
    entities = catalog.entities_by_refs(session, refs)
    now = utcnow()
    seen = access.last_seen(session, now, refs)
    roles = access.roles_at_last_sign_in(session, now, refs)
    tokens = access.valid_tokens(session, now, refs)
    members = []
    for ref, entity in zip(refs, entities, strict=True):
        profile = (entity.body.get("spec", {}).get("profile") or {}) if entity else {}
        members.append(
            Member(
                ref=ref,
                name=str(profile.get("displayName") or ref.split("/")[-1]),
                roles=roles.get(ref, []),
                last_seen=seen.get(ref),
                tokens=tokens.get(ref, 0),
            )
        )
    return members


def get_review(session: Session, team: str, quarter: Quarter) -> AccessReview | None:
    return session.exec(
        select(AccessReview).where(
            col(AccessReview.team) == team, col(AccessReview.quarter) == quarter.label
        )
    ).first()


def review_status(review: AccessReview | None, quarter: Quarter, today: date) -> str:
    if review is not None:
        return "done"
    return "overdue" if today > quarter.end else "due"


def submit_review(
    session: Session,
    team: str,
    decisions: list[MemberDecision],
    *,
    note: str,
    by: Identity,
    quarter: Quarter | None = None,
) -> AccessReview:
    """Record the lead's decision on every current member of ``team`` for the quarter:
    each member needs one, and a quarter is reviewed once."""
    quarter = quarter or Quarter.of(utcnow().date())
    members = {member.ref: member for member in team_members(session, team)}
    if not members:
        raise InvalidInput.for_field(
            "members", f"{team} has no members in the catalog", "a team with members to review"
        )
    given: dict[str, MemberDecision] = {}
    for index, decision in enumerate(decisions):
        ref = parse_ref(decision.member, default_kind="user", field=f"members[{index}].member").key
        if ref not in members:
            raise InvalidInput.for_field(
                f"members[{index}].member",
                f"{ref} is not a member of {team}",
                "one of " + ", ".join(members),
            )
        if ref in given:
            raise InvalidInput.for_field(
                f"members[{index}].member", f"{ref} is given twice", "one decision per member"
            )
        given[ref] = decision
    missing = [ref for ref in members if ref not in given]
    if missing:
        raise InvalidInput.for_field(
            "members",
            f"no decision for {', '.join(missing)}",
            "keep or remove for every member of the team",
        )
    earlier = get_review(session, team, quarter)
    if earlier is not None:
        raise Conflict(
            f"{team}'s access was reviewed for {quarter} by {earlier.reviewer} on "
            f"{as_utc(earlier.submitted_at).date()}"
        )
    review = AccessReview(
        team=team,
        quarter=quarter.label,
        reviewer=by.ref,
        note=note,
        members=[
            {
                "member": ref,
                "name": members[ref].name,
                "roles": members[ref].roles,
                "tokens": members[ref].tokens,
                "decision": given[ref].decision,
                "note": given[ref].note,
            }
            for ref in members
        ],
    )
    try:
        with session.begin_nested():
            session.add(review)
    except IntegrityError:  # a second submission at the same moment
        raise Conflict(f"{team}'s access was just reviewed for {quarter}") from None
    return review


def teams(session: Session) -> list[str]:
    """Every Group of the catalog that has members: the teams whose access is reviewed."""
    groups = [entity.ref for entity in catalog.entities_of_kind(session, "Group", limit=5000)]
    relations = catalog.relations_by_source(session, groups)
    return [g for g in groups if any(r["type"] == HAS_MEMBER for r in relations.get(g, []))]


def quarters_in(start: date, end: date) -> list[Quarter]:
    quarter, last = Quarter.of(start), Quarter.of(end)
    found = []
    while quarter <= last:
        found.append(quarter)
        quarter = quarter.next()
    return found


def _reviews_evidence(period: EvidencePeriod) -> Evidence:
    today = utcnow().date()
    with Session(period.engine) as session:
        team_refs = teams(session)
        quarters = quarters_in(period.start, period.end)
        reviews = session.exec(
            select(AccessReview).where(col(AccessReview.quarter).in_([q.label for q in quarters]))
        ).all()
    by_key = {(review.team, review.quarter): review for review in reviews}
    rows: list[dict[str, Any]] = []
    exceptions = []
    for quarter in quarters:
        for team in sorted(
            set(team_refs) | {r.team for r in reviews if r.quarter == quarter.label}
        ):
            review = by_key.get((team, quarter.label))
            status = review_status(review, quarter, today)
            if review is None:
                if status == "overdue":
                    exceptions.append(f"{team} has no access review for {quarter}")
                rows.append(
                    as_row(
                        quarter=quarter.label,
                        team=team,
                        status=status,
                        reviewer=None,
                        submitted_at=None,
                        member=None,
                        decision=None,
                        note=None,
                    )
                )
                continue
            for member in review.members:
                rows.append(
                    as_row(
                        quarter=quarter.label,
                        team=team,
                        status=status,
                        reviewer=review.reviewer,
                        submitted_at=review.submitted_at,
                        member=member["member"],
                        decision=member["decision"],
                        note=member.get("note") or "",
                    )
                )
    summary = {
        "quarters": ", ".join(q.label for q in quarters),
        "teams": len(team_refs),
        "reviews": len(reviews),
        "removals_decided": sum(
            1 for review in reviews for m in review.members if m["decision"] == "remove"
        ),
    }
    columns = [
        "quarter",
        "team",
        "status",
        "reviewer",
        "submitted_at",
        "member",
        "decision",
        "note",
    ]
    return Evidence(columns, rows, summary, exceptions)


REVIEW_COLLECTOR = EvidenceCollector(
    "access.reviews",
    "Quarterly access reviews",
    "For each quarter of the period and each team, whether its lead reviewed every "
    "member's access, who did and when, and what was decided for each member.",
    ("CC6.2", "CC6.3"),
    _reviews_evidence,
)


def list_reviews(session: Session, quarter: Quarter) -> list[dict[str, Any]]:
    """Each team's review for ``quarter``: its status, and who reviewed it when."""
    today = utcnow().date()
    reviews = {
        review.team: review
        for review in session.exec(
            select(AccessReview).where(col(AccessReview.quarter) == quarter.label)
        )
    }
    shown = []
    for team in sorted(set(teams(session)) | set(reviews)):
        review = reviews.get(team)
        shown.append(
            {
                "team": team,
                "quarter": quarter.label,
                "due": quarter.end.isoformat(),
                "status": review_status(review, quarter, today),
                "reviewer": review.reviewer if review else None,
                "submitted_at": as_utc(review.submitted_at).isoformat() if review else None,
                "removals": sum(1 for m in review.members if m["decision"] == "remove")
                if review
                else 0,
            }
        )
    return shown

"""Quarterly access reviews: a team's lead attests each member's access, once a quarter;
the attestation is evidence, and a quarter that ended unreviewed is an exception."""

from __future__ import annotations

from datetime import date

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from plugins.soc2.service.reviews import Quarter, _reviews_evidence
from portal.db import utcnow
from portal.evidence import EvidencePeriod
from portal.settings import Settings

from .conftest import ALICE, AUDITOR, CAROL, FRAUD
from conftest import ClientFactory

THIS_QUARTER = Quarter.of(utcnow().date())
KEEP_BOTH = {
    "members": [
        {"member": ALICE, "decision": "keep"},
        {"member": CAROL, "decision": "remove", "note": "moved to search"},
    ],
    "note": "checked against the HR list",
}


@pytest.mark.usefixtures("team", "activity")
def test_a_team_lead_attests_each_members_access_once_a_quarter(
    carol: TestClient, client_as: ClientFactory
) -> None:
    before = carol.get("/api/soc2/reviews/default/fraud").json()
    assert before["status"] == "due"
    assert [(m["member"], m["name"], m["roles"]) for m in before["members"]] == [
        (ALICE, "Alice Martin", ["ml_engineer"]),
        (CAROL, "Carol Diaz", []),
    ]
    done = carol.post("/api/soc2/reviews/default/fraud", json=KEEP_BOTH)
    assert done.status_code == 201, done.text
    assert done.json()["status"] == "done"
    assert done.json()["reviewer"] == CAROL
    assert [m["decision"] for m in done.json()["members"]] == ["keep", "remove"]
    again = carol.post("/api/soc2/reviews/default/fraud", json=KEEP_BOTH)
    assert again.status_code == 409
    assert f"reviewed for {THIS_QUARTER} by {CAROL}" in again.json()["detail"]
    auditor = client_as("auditor", user=AUDITOR)
    listed = auditor.get("/api/soc2/reviews").json()
    assert [(r["team"], r["status"], r["removals"]) for r in listed] == [(FRAUD, "done", 1)]


@pytest.mark.usefixtures("team")
def test_every_member_needs_one_decision(carol: TestClient) -> None:
    missing = carol.post(
        "/api/soc2/reviews/default/fraud",
        json={"members": [{"member": ALICE, "decision": "keep"}]},
    )
    assert missing.status_code == 422
    assert missing.json()["errors"] == [
        {
            "field": "members",
            "message": f"no decision for {CAROL}",
            "expected": "keep or remove for every member of the team",
        }
    ]
    stranger = carol.post(
        "/api/soc2/reviews/default/fraud",
        json={"members": [*KEEP_BOTH["members"], {"member": "bob", "decision": "keep"}]},
    )
    assert stranger.status_code == 422
    assert stranger.json()["errors"][0]["field"] == "members[2].member"
    assert stranger.json()["errors"][0]["message"] == f"user:default/bob is not a member of {FRAUD}"


@pytest.mark.usefixtures("team")
def test_only_a_lead_of_the_team_attests(
    alice: TestClient, client: TestClient, client_as: ClientFactory
) -> None:
    other_lead = client_as("team_lead", user="user:default/dave", groups=["group:default/search"])
    reasons = []
    for who in (alice, client, other_lead):
        denied = who.post("/api/soc2/reviews/default/fraud", json=KEEP_BOTH)
        assert denied.status_code == 403
        reasons.append(denied.json()["reasons"])
    lead_only = "only a team lead of group:default/fraud may review its members' access"
    # alice's role has no soc2.review.submit at all; the admin and the other lead have it.
    assert [lead_only in found for found in reasons] == [False, True, True]


@pytest.mark.usefixtures("team")
def test_a_quarter_that_ended_unreviewed_is_an_exception(
    engine: Engine, settings: Settings
) -> None:
    last = THIS_QUARTER.previous()
    evidence = _reviews_evidence(EvidencePeriod(last.start, last.end, engine, settings))
    assert evidence.exceptions == [f"{FRAUD} has no access review for {last}"]
    assert [(r["team"], r["status"]) for r in evidence.rows] == [(FRAUD, "overdue")]
    current = _reviews_evidence(
        EvidencePeriod(THIS_QUARTER.start, utcnow().date(), engine, settings)
    )
    assert current.exceptions == []
    assert [r["status"] for r in current.rows] == ["due"]


def test_quarters_know_their_days() -> None:
    assert (Quarter(2026, 4).start, Quarter(2026, 4).end) == (date(2026, 10, 1), date(2026, 12, 31))
    assert Quarter(2026, 4).next() == Quarter(2027, 1)
    assert Quarter(2027, 1).previous() == Quarter(2026, 4)
    assert Quarter.of(date(2026, 2, 28)).label == "2026-Q1"
    assert Quarter.parse("2026-Q3") == Quarter(2026, 3)

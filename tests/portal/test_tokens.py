"""API tokens: shown once, stored hashed, and refused alike when wrong, expired or revoked."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session

from portal.auth.identity import Identity
from portal.auth.tokens import INVALID, identify, issue_token, parse_duration, revoke_token
from portal.errors import InvalidInput, NotAuthenticated, NotFound
from portal.models import ApiToken

ALICE = Identity(ref="user:default/alice", roles=("ml_engineer",))


def test_a_token_is_shown_once_and_stored_only_as_a_hash(engine: Engine) -> None:
    with Session(engine) as session:
        issued = issue_token(
            session,
            user_ref=ALICE.ref,
            roles=["ml_engineer"],
            groups=["group:default/fraud"],
            name="ci",
            created_by=ALICE.ref,
        )
        session.commit()
        stored = session.get(ApiToken, issued.token.id)
        assert stored is not None
        assert issued.secret.startswith("pvd_")
        assert issued.secret not in (stored.secret_hash, stored.hint)
        assert stored.hint == issued.secret[:8]
        who = identify(session, issued.secret)
    assert (who.ref, who.roles, who.groups, who.via) == (
        ALICE.ref,
        ("ml_engineer",),
        ("group:default/fraud",),
        "token",
    )


@pytest.mark.parametrize("case", ["wrong", "expired", "revoked"])
def test_wrong_expired_and_revoked_tokens_get_the_same_answer(engine: Engine, case: str) -> None:
    with Session(engine) as session:
        issued = issue_token(
            session,
            user_ref=ALICE.ref,
            roles=["ml_engineer"],
            name="ci",
            created_by=ALICE.ref,
            expires_in=timedelta(microseconds=1) if case == "expired" else None,
        )
        if case == "revoked":
            revoke_token(session, issued.token.id, by=ALICE)  # type: ignore[arg-type]
        session.commit()
        secret = issued.secret + "x" if case == "wrong" else issued.secret
        with pytest.raises(NotAuthenticated) as refused:
            identify(session, secret)
    assert str(refused.value) == INVALID


def test_only_the_owner_or_an_admin_revokes_a_token(engine: Engine) -> None:
    with Session(engine) as session:
        issued = issue_token(
            session, user_ref=ALICE.ref, roles=["ml_engineer"], name="ci", created_by=ALICE.ref
        )
        bob = Identity(ref="user:default/bob", roles=("team_lead",))
        with pytest.raises(NotFound):
            revoke_token(session, issued.token.id, by=bob)  # type: ignore[arg-type]
        root = Identity(ref="user:default/root", roles=("admin",))
        assert revoke_token(session, issued.token.id, by=root).revoked_at is not None  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("text", "expected"),
    [("30d", timedelta(days=30)), ("12h", timedelta(hours=12)), ("90m", timedelta(minutes=90))],
)
def test_expiry_durations_read_as_people_write_them(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


def test_an_unreadable_duration_names_the_field_and_the_form() -> None:
    with pytest.raises(InvalidInput) as refused:
        parse_duration("a month")
    assert refused.value.errors[0].field == "expires"
    assert refused.value.errors[0].expected == "a number and a unit: 30d, 12h or 90m"

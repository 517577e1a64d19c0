"""API tokens: made once, shown once, stored as a SHA-256, revocable, expiring."""

from __future__ import annotations

import hashlib
import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import update
from sqlmodel import Session, col, select

from portal.auth.identity import Identity
from portal.db import as_utc, utcnow
from portal.errors import Conflict, InvalidInput, NotAuthenticated, NotFound
from portal.models import ApiToken

PREFIX = "pvd_"
# The same words whatever is wrong with a token, so a caller learns nothing from them.
INVALID = "the API token is not valid (wrong, expired or revoked)"
# Writing last_used_at on every request would make every read a write.
LAST_USED_RESOLUTION = timedelta(minutes=1)


@dataclass(frozen=True)
class IssuedToken:
    """A new token: ``secret`` is the only time the full token exists outside the caller."""

    token: ApiToken
    secret: str


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def parse_duration(text: str) -> timedelta:
    """``30d``, ``12h`` or ``90m``; raises InvalidInput naming ``expires``."""
    units = {"d": "days", "h": "hours", "m": "minutes"}
    number, unit = text[:-1], text[-1:]
    if not number.isdigit() or unit not in units or int(number) == 0:
        raise InvalidInput.for_field(
            "expires", f"{text!r} is not a duration", "a number and a unit: 30d, 12h or 90m"
        )
    return timedelta(**{units[unit]: int(number)})


def issue_token(
    session: Session,
    *,
    user_ref: str,
    roles: Sequence[str],
    groups: Sequence[str] = (),
    name: str,
    created_by: str,
    expires_in: timedelta | None = None,
) -> IssuedToken:
    secret = PREFIX + secrets.token_urlsafe(30)
    token = ApiToken(
        name=name or "token",
        user_ref=user_ref,
        roles=list(roles),
        groups=list(groups),
        secret_hash=_hash(secret),
        hint=secret[: len(PREFIX) + 4],
        created_by=created_by,
        expires_at=utcnow() + expires_in if expires_in else None,
    )
    session.add(token)
    session.flush()
    return IssuedToken(token, secret)


def identify(session: Session, secret: str) -> Identity:
    """The identity a bearer token stands for; NotAuthenticated (same words) if none."""
    token = session.exec(select(ApiToken).where(col(ApiToken.secret_hash) == _hash(secret))).first()
    now = utcnow()
    if (
        token is None
        or token.revoked_at is not None
        or (token.expires_at is not None and as_utc(token.expires_at) <= now)
    ):
        raise NotAuthenticated(INVALID)
    if token.last_used_at is None or now - as_utc(token.last_used_at) > LAST_USED_RESOLUTION:
        # On a connection of its own, committed at once: noting a use must not hold a lock
        # for the rest of the request, nor be lost when the request's work rolls back.
        with session.get_bind().engine.connect() as connection:
            connection.execute(
                update(ApiToken).where(col(ApiToken.id) == token.id).values(last_used_at=now)
            )
            connection.commit()
    return Identity(
        ref=token.user_ref,
        roles=tuple(token.roles),
        groups=tuple(token.groups),
        via="token",
        token_id=token.id,
        expires_at=as_utc(token.expires_at) if token.expires_at else None,
    )


class TokenCache:
    """Tokens identified in the last ``seconds``, so most requests skip the database.

    A token revoked through this portal is forgotten at once; one revoked elsewhere (another
    replica, the CLI) keeps working here for at most ``seconds``. Expiry is always exact.
    """

    def __init__(self, seconds: float, *, size: int = 10_000) -> None:
        self.seconds, self.size = seconds, size
        self._entries: dict[str, tuple[float, Identity]] = {}

    def get(self, secret: str) -> Identity | None:
        if self.seconds <= 0:
            return None
        key = _hash(secret)
        entry = self._entries.get(key)
        if entry is None:
            return None
        cached_at, identity = entry
        expired = identity.expires_at is not None and identity.expires_at <= utcnow()
        if time.monotonic() - cached_at > self.seconds or expired:
            self._entries.pop(key, None)
            return None
        return identity

    def put(self, secret: str, identity: Identity) -> None:
        if self.seconds <= 0:
            return
        if len(self._entries) >= self.size:
            self._entries.clear()
        self._entries[_hash(secret)] = (time.monotonic(), identity)

    def forget(self, token_id: int) -> None:
        for key, (_, identity) in list(self._entries.items()):
            if identity.token_id == token_id:
                self._entries.pop(key, None)


def list_tokens(session: Session, *, user_ref: str | None = None) -> list[ApiToken]:
    """Tokens newest first; of one user when ``user_ref`` is given."""
    query = select(ApiToken).order_by(col(ApiToken.id).desc())
    if user_ref is not None:
        query = query.where(col(ApiToken.user_ref) == user_ref)
    return list(session.exec(query).all())


def revoke_token(session: Session, token_id: int, *, by: Identity) -> ApiToken:
    """Revoke one of ``by``'s tokens (an admin may revoke anyone's)."""
    token = session.get(ApiToken, token_id)
    if token is None or (token.user_ref != by.ref and "admin" not in by.roles):
        raise NotFound(f"you have no API token {token_id}")
    if token.revoked_at is not None:
        raise Conflict(f"API token {token_id} is already revoked")
    token.revoked_at = utcnow()
    session.add(token)
    return token

"""Browser sessions: a signed cookie holding who signed in, when, and the CSRF token.

The cookie is signed (itsdangerous, through Starlette's SessionMiddleware), HttpOnly,
SameSite=Lax, and Secure when the portal is served over https. A session ends after
``auth.session_idle_minutes`` without a request and ``auth.session_max_hours`` after
sign-in, whichever comes first.
"""

from __future__ import annotations

import hmac
import secrets
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from starlette.requests import Request

from portal.auth.identity import Identity
from portal.errors import NotAuthenticated
from portal.settings import Settings

COOKIE_NAME = "paved_session"
CSRF_HEADER = "X-CSRF-Token"
CSRF_FIELD = "csrf_token"
SECRET_KEY_FILE = "secret_key"  # noqa: S105 (a file name, not a secret)
# Writing the last-seen time on every request would re-sign the cookie on every response
# for nothing; a minute is far finer than any idle limit.
SEEN_RESOLUTION = 60.0

_IDENTITY, _SIGNED_IN, _SEEN, _CSRF, _ID_TOKEN = (
    "identity",
    "signed_in_at",
    "seen_at",
    "csrf",
    "id_token",
)


def secret_key(settings: Settings) -> str:
    """The key that signs cookies: the setting, else one kept in ``<data_dir>/secret_key``."""
    if settings.auth.secret_key is not None:
        return settings.auth.secret_key.get_secret_value()
    path = Path(settings.data_dir) / SECRET_KEY_FILE
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        # Written once, readable only by this user; a concurrent first start keeps the winner.
        try:
            with path.open("x") as handle:
                path.chmod(0o600)
                handle.write(secrets.token_urlsafe(48))
        except FileExistsError:
            pass
    return path.read_text().strip()


def cookie_is_secure(settings: Settings) -> bool:
    return settings.base_url.startswith("https://")


def csrf_token(request: Request) -> str:
    """This browser's CSRF token, made on first use; pages put it in forms and htmx headers."""
    token = request.session.get(_CSRF)
    if not isinstance(token, str):
        token = secrets.token_urlsafe(32)
        request.session[_CSRF] = token
    return token


def csrf_matches(request: Request, sent: str | None) -> bool:
    expected = request.session.get(_CSRF)
    return (
        isinstance(expected, str) and isinstance(sent, str) and hmac.compare_digest(expected, sent)
    )


def sign_in(request: Request, identity: Identity, *, id_token: str | None = None) -> None:
    """Start a fresh session for ``identity``: nothing from before sign-in is kept."""
    request.session.clear()
    now = time.time()
    request.session.update(
        {
            _IDENTITY: identity.to_session(),
            _SIGNED_IN: now,
            _SEEN: now,
            _CSRF: secrets.token_urlsafe(32),
        }
    )
    if id_token:
        request.session[_ID_TOKEN] = id_token


def sign_out(request: Request) -> str | None:
    """End the session; returns the ID token it held (the provider's logout wants it)."""
    id_token = request.session.get(_ID_TOKEN)
    request.session.clear()
    return id_token if isinstance(id_token, str) else None


def session_identity(request: Request, settings: Settings) -> Identity | None:
    """Who this browser signed in as; None if nobody, NotAuthenticated once it expired."""
    data: dict[str, Any] = request.session
    stored = data.get(_IDENTITY)
    if not isinstance(stored, dict):
        return None
    now = time.time()
    signed_in, seen = float(data.get(_SIGNED_IN, 0)), float(data.get(_SEEN, 0))
    if now - signed_in > settings.auth.session_max_hours * 3600:
        sign_out(request)
        raise NotAuthenticated(
            f"your session ended {settings.auth.session_max_hours} hours after sign-in; "
            "sign in again"
        )
    if now - seen > settings.auth.session_idle_minutes * 60:
        sign_out(request)
        raise NotAuthenticated(
            f"your session ended after {settings.auth.session_idle_minutes} minutes without "
            "activity; sign in again"
        )
    if now - seen > SEEN_RESOLUTION:
        data[_SEEN] = now
    return Identity.from_session(stored)


def safe_next(target: str | None) -> str:
    """Where to go after sign-in: only a path of this portal, never another site."""
    if not target:
        return "/"
    parts = urlsplit(target)
    if (
        parts.scheme
        or parts.netloc
        or not target.startswith("/")
        or target.startswith("//")
        or "\\" in target
        or any(ord(char) < 0x20 for char in target)
        or target.startswith("/auth/")
    ):
        return "/"
    return target

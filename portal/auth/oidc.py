"""OpenID Connect sign-in through Authlib: authorization code with PKCE, discovery, JWKS,
state and nonce, ID-token validation, and RP-initiated logout where the provider has it.

The provider's groups (the ``auth.oidc.groups_claim`` claim) become Paved roles through
``auth.role_map`` and catalog groups through ``auth.group_map``.
"""

from __future__ import annotations

import re
from typing import Any

# Authlib talks to the provider with httpx2, so its errors are httpx2 errors.
import httpx2
from authlib.integrations.starlette_client import OAuth, OAuthError
from starlette.requests import Request
from starlette.responses import Response

from portal.auth.identity import Identity, group_ref, user_ref
from portal.errors import EngineUnavailable, NotAuthenticated
from portal.settings import AuthSettings, OidcSettings

DISCOVERY_PATH = "/.well-known/openid-configuration"
REQUIRED_METADATA = ("issuer", "authorization_endpoint", "token_endpoint", "jwks_uri")
TIMEOUT = 5.0
_NOT_NAME = re.compile(r"[^a-z0-9_.-]+")


class OidcUnavailable(EngineUnavailable):
    """The provider cannot be reached, or its discovery document is not usable."""


def discovery_url(settings: OidcSettings) -> str:
    return str(settings.issuer).rstrip("/") + DISCOVERY_PATH


def check_metadata(settings: OidcSettings, metadata: Any) -> dict[str, Any]:
    """The discovery document, if it is one for the configured issuer; else OidcUnavailable."""
    where = discovery_url(settings)
    if not isinstance(metadata, dict):
        raise OidcUnavailable(
            f"{where} is not a JSON object; expected an OpenID discovery document"
        )
    missing = [key for key in REQUIRED_METADATA if not metadata.get(key)]
    if missing:
        raise OidcUnavailable(
            f"{where} lacks {', '.join(missing)}; expected an OpenID discovery document"
        )
    if str(metadata["issuer"]).rstrip("/") != str(settings.issuer).rstrip("/"):
        raise OidcUnavailable(
            f"the provider says its issuer is {metadata['issuer']}, but auth.oidc.issuer is "
            f"{settings.issuer}; expected them to be the same"
        )
    return metadata


def _unavailable(settings: OidcSettings, exc: Exception) -> OidcUnavailable:
    if isinstance(exc, httpx2.HTTPStatusError):
        reason = f"it answered {exc.response.status_code}"
    elif isinstance(exc, httpx2.TimeoutException):
        reason = f"it did not answer within {TIMEOUT:g} s"
    elif isinstance(exc, httpx2.HTTPError):
        reason = f"it cannot be reached ({type(exc).__name__}: {exc})"
    else:
        reason = f"its answer is not usable ({exc})"
    return OidcUnavailable(
        f"the sign-in provider {settings.issuer} is unavailable: {reason}; "
        f"expected its discovery document at {discovery_url(settings)} "
        "(settings auth.oidc.issuer, PAVED_AUTH__OIDC__ISSUER)"
    )


def fetch_metadata_now(settings: OidcSettings) -> dict[str, Any]:
    """Read the discovery document (for /readyz); raises OidcUnavailable."""
    try:
        response = httpx2.get(discovery_url(settings), timeout=TIMEOUT)
        response.raise_for_status()
        metadata = response.json()
    except (httpx2.HTTPError, ValueError) as exc:
        raise _unavailable(settings, exc) from None
    return check_metadata(settings, metadata)


def _name(text: str) -> str:
    """A Backstage entity name from a provider's username or group name."""
    name = _NOT_NAME.sub("-", text.strip().lower()).strip("-._")[:63]
    return name or "unnamed"


def identity_from_claims(claims: dict[str, Any], auth: AuthSettings) -> Identity:
    """A signed-in person: ``user:default/<username>``, roles and groups mapped by settings."""
    username = claims.get("preferred_username") or str(claims.get("email", "")).split("@")[0]
    username = username or claims.get("sub")
    if not username:
        raise NotAuthenticated("the provider's ID token names nobody (no sub claim)")
    raw_groups = claims.get(auth.oidc.groups_claim) or []
    if isinstance(raw_groups, str):
        raw_groups = [raw_groups]
    provider_groups = [str(group) for group in raw_groups]
    roles: list[str] = []
    for group in provider_groups:
        roles.extend(role for role in auth.role_map.get(group, []) if role not in roles)
    groups = [auth.group_map.get(group) or group_ref(_name(group)) for group in provider_groups]
    return Identity(
        ref=user_ref(_name(str(username))),
        roles=tuple(roles),
        groups=tuple(dict.fromkeys(groups)),
        name=str(claims.get("name") or username),
    )


class OidcSignIn:
    """The portal as an OpenID Connect relying party of one provider."""

    def __init__(self, auth: AuthSettings) -> None:
        self.auth = auth
        settings = auth.oidc
        secret = settings.client_secret.get_secret_value() if settings.client_secret else None
        self._oauth = OAuth()
        self.client: Any = self._oauth.register(
            "paved",
            client_id=settings.client_id,
            client_secret=secret,
            server_metadata_url=discovery_url(settings),
            client_kwargs={
                "scope": " ".join(settings.scopes),
                "code_challenge_method": "S256",
                "timeout": TIMEOUT,
            },
        )

    async def metadata(self) -> dict[str, Any]:
        try:
            metadata = await self.client.load_server_metadata()
        except (httpx2.HTTPError, ValueError) as exc:
            raise _unavailable(self.auth.oidc, exc) from None
        try:
            return check_metadata(self.auth.oidc, metadata)
        except OidcUnavailable:
            self.client.server_metadata.clear()  # read it again next time
            raise

    async def start(self, request: Request, redirect_uri: str) -> Response:
        """Redirect the browser to the provider (state, nonce and PKCE kept in the session)."""
        await self.metadata()
        try:
            response: Response = await self.client.authorize_redirect(request, redirect_uri)
        except httpx2.HTTPError as exc:
            raise _unavailable(self.auth.oidc, exc) from None
        return response

    async def finish(self, request: Request) -> tuple[Identity, str | None]:
        """Exchange the code, validate the ID token; NotAuthenticated with the reason if not."""
        await self.metadata()
        try:
            token = await self.client.authorize_access_token(request)
        except OAuthError as exc:
            raise NotAuthenticated(
                f"the sign-in provider refused: {exc.description or exc.error}"
            ) from None
        except httpx2.HTTPError as exc:
            raise _unavailable(self.auth.oidc, exc) from None
        except Exception as exc:  # joserfc's and Authlib's validation errors
            raise NotAuthenticated(f"the sign-in could not be verified: {exc}") from None
        claims = token.get("userinfo")
        if not claims:
            raise NotAuthenticated("the provider sent no ID token; expected the openid scope")
        return identity_from_claims(dict(claims), self.auth), token.get("id_token")

    async def logout_redirect(
        self, request: Request, *, id_token: str | None, return_to: str
    ) -> Response | None:
        """The provider's end-session redirect, or None when it offers none."""
        try:
            metadata = await self.metadata()
        except OidcUnavailable:
            return None
        if not metadata.get("end_session_endpoint"):
            return None
        response: Response = await self.client.logout_redirect(
            request,
            post_logout_redirect_uri=return_to,
            id_token_hint=id_token,
            client_id=self.auth.oidc.client_id,
        )
        return response

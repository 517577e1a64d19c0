"""Signing in and out (OIDC or local demo), who you are, and API tokens (API and page)."""

from __future__ import annotations

import logging
from functools import partial
from typing import TYPE_CHECKING, Annotated, Any, Literal

from fastapi import APIRouter, Form, Query, Request
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, Field
from sqlmodel import Session
from starlette.responses import HTMLResponse, RedirectResponse, Response

from portal import actions, audit
from portal.auth import sessions, tokens
from portal.auth.identity import Identity, user_ref
from portal.db import SessionDep
from portal.errors import EngineUnavailable, InvalidInput, NotAuthenticated, NotFound
from portal.gate import requires, sent_csrf_token, ungated
from portal.models import ApiToken, ApiTokenOut
from portal.settings import Role, Settings
from portal.shell import Shell

if TYPE_CHECKING:
    # Imported for types only: the module (Authlib) loads when OIDC is configured.
    from portal.auth.oidc import OidcSignIn

log = logging.getLogger("paved.auth")

router = APIRouter(include_in_schema=False)
api = APIRouter(prefix="/api/auth", tags=["auth"])

NEXT_KEY = "next_after_sign_in"
NEVER = "never"
DEFAULT_EXPIRY = "90d"


def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def _oidc(request: Request) -> OidcSignIn | None:
    oidc: OidcSignIn | None = request.app.state.oidc
    return oidc


def _shell(request: Request) -> Shell:
    shell: Shell = request.app.state.shell
    return shell


async def _audit_alone(request: Request, **event: Any) -> None:
    """Audit a sign-in or sign-out (no route transaction to join), off the event loop."""
    request_id = getattr(request.state, "request_id", None)
    await run_in_threadpool(
        partial(audit.append_alone, request.app.state.engine, request_id=request_id, **event)
    )


def _sign_in_page(
    request: Request, *, next_path: str, error: str | None = None, status: int = 200, **extra: Any
) -> HTMLResponse:
    settings = _settings(request)
    context = {
        "next": next_path,
        "error": error,
        "oidc_configured": _oidc(request) is not None,
        "local_users": settings.auth.local.users if settings.auth.local.enabled else [],
        "csrf_token": sessions.csrf_token(request),
        **extra,
    }
    return _shell(request).render(request, "auth/login.html", context, status_code=status)


def _callback_url(request: Request) -> str:
    settings = _settings(request)
    if settings.public_url:
        return settings.base_url + "/auth/oidc/callback"
    return str(request.url_for("oidc_callback"))


@router.get("/auth/login")
@ungated
async def sign_in(
    request: Request,
    next_path: Annotated[
        str | None, Query(alias="next", description="Where to go once signed in.")
    ] = None,
    provider: Annotated[Literal["oidc"] | None, Query()] = None,
    signed_out: Annotated[bool, Query()] = False,
) -> Response:
    """The sign-in page; with only OIDC configured it goes straight to the provider."""
    target = sessions.safe_next(next_path)
    oidc = _oidc(request)
    local = _settings(request).auth.local.enabled
    if oidc is not None and (provider == "oidc" or (not local and not signed_out)):
        try:
            request.session[NEXT_KEY] = target
            return await oidc.start(request, _callback_url(request))
        except EngineUnavailable as exc:  # the provider (OidcUnavailable)
            log.error("sign-in provider unavailable: %s", exc)
            return _sign_in_page(request, next_path=target, error=exc.detail, status=503)
    if oidc is None and not local:
        return _sign_in_page(
            request,
            next_path=target,
            error="No way to sign in is configured: expected auth.oidc.issuer and "
            "auth.oidc.client_id (or, for a demo on this machine, auth.local.enabled).",
            status=503,
        )
    return _sign_in_page(request, next_path=target, signed_out=signed_out)


@router.get("/auth/oidc/callback", name="oidc_callback")
@ungated
async def oidc_callback(request: Request) -> Response:
    """Where the provider sends the browser back: check everything, then sign in."""
    oidc = _oidc(request)
    if oidc is None:
        raise NotFound("OIDC sign-in is not configured (auth.oidc.issuer)")
    target = sessions.safe_next(request.session.get(NEXT_KEY))
    try:
        identity, id_token = await oidc.finish(request)
    except (NotAuthenticated, EngineUnavailable) as exc:  # EngineUnavailable: OidcUnavailable
        log.warning("OIDC sign-in failed: %s", exc)
        await _audit_alone(
            request,
            actor="anonymous",
            action=actions.SESSION_CREATE.name,
            allowed=False,
            reasons=[exc.detail],
            outcome="failed",
            detail={"via": "oidc"},
        )
        return _sign_in_page(request, next_path=target, error=exc.detail, status=exc.status)
    sessions.sign_in(request, identity, id_token=id_token)
    await _audit_alone(
        request,
        actor=identity.ref,
        action=actions.SESSION_CREATE.name,
        allowed=True,
        outcome="succeeded",
        detail={"via": "oidc", "roles": list(identity.roles), "groups": list(identity.groups)},
    )
    return RedirectResponse(target, status_code=303)


@router.post("/auth/local")
@ungated
async def local_sign_in(
    request: Request,
    user: Annotated[str, Form(description="The name of one of auth.local.users.")],
    csrf_token: Annotated[str, Form()] = "",
    next_path: Annotated[str | None, Form(alias="next")] = None,
) -> Response:
    """Sign in as one of the demo users, without a password (loopback only)."""
    settings = _settings(request)
    if not settings.auth.local.enabled:
        raise NotFound("local sign-in is off (auth.local.enabled)")
    target = sessions.safe_next(next_path)
    if not sessions.csrf_matches(request, csrf_token):
        return _sign_in_page(
            request, next_path=target, error="The sign-in form expired; try again.", status=403
        )
    chosen = next((u for u in settings.auth.local.users if u.name == user), None)
    if chosen is None:
        names = ", ".join(u.name for u in settings.auth.local.users)
        raise InvalidInput.for_field("user", f"{user!r} is not a local user", f"one of {names}")
    identity = Identity(
        ref=user_ref(chosen.name),
        roles=tuple(chosen.roles),
        groups=tuple(chosen.groups),
        name=chosen.display_name,
    )
    sessions.sign_in(request, identity)
    await _audit_alone(
        request,
        actor=identity.ref,
        action=actions.SESSION_CREATE.name,
        allowed=True,
        outcome="succeeded",
        detail={"via": "local", "roles": list(identity.roles), "groups": list(identity.groups)},
    )
    return RedirectResponse(target, status_code=303)


@router.post("/auth/logout")
@ungated
async def sign_out(request: Request) -> Response:
    """Sign out here, and at the provider when it offers RP-initiated logout."""
    settings = _settings(request)
    try:
        identity = sessions.session_identity(request, settings)
    except NotAuthenticated:
        identity = None  # already expired: signing out is what was wanted anyway
    if identity is not None:
        if not sessions.csrf_matches(request, await sent_csrf_token(request)):
            return _sign_in_page(
                request, next_path="/", error="The sign-out form expired; try again.", status=403
            )
        await _audit_alone(
            request,
            actor=identity.ref,
            action=actions.SESSION_DELETE.name,
            allowed=True,
            outcome="succeeded",
            detail={"via": "session"},
        )
    id_token = sessions.sign_out(request)
    signed_out = "/auth/login?signed_out=true"
    oidc = _oidc(request)
    if oidc is not None and identity is not None and id_token:
        return_to = settings.base_url if settings.public_url else str(request.base_url)
        response = await oidc.logout_redirect(
            request, id_token=id_token, return_to=return_to.rstrip("/") + signed_out
        )
        if response is not None:
            response.status_code = 303
            return response
    return RedirectResponse(signed_out, status_code=303)


# -- Who you are, and your API tokens ---------------------------------------------------


class Me(BaseModel):
    ref: str = Field(description="Your catalog User entity ref.")
    groups: list[str] = Field(description="Catalog Group refs you belong to.")
    roles: list[str] = Field(description="Your Paved roles.")
    name: str
    via: Literal["session", "token"]


@api.get("/me")
def me(identity: Annotated[Identity, requires(actions.IDENTITY_READ)]) -> Me:
    """Who the session or the API token stands for."""
    return Me(
        ref=identity.ref,
        groups=list(identity.groups),
        roles=list(identity.roles),
        name=identity.display_name,
        via=identity.via,
    )


class TokenCreate(BaseModel):
    name: str = Field(min_length=1, max_length=100, description="What the token is for.")
    roles: list[Role] | None = Field(
        None, description="A subset of your roles; default: all of them."
    )
    expires: str = Field(
        DEFAULT_EXPIRY, description="Lifetime such as 30d, 12h or 90m, or `never`."
    )


class TokenCreated(BaseModel):
    token: ApiTokenOut
    secret: str = Field(description="The token itself; shown this once, stored only as a hash.")


def create_token_for(session: Session, identity: Identity, body: TokenCreate) -> TokenCreated:
    roles = body.roles if body.roles is not None else list(identity.roles)
    extra = sorted(set(roles) - set(identity.roles))
    if extra:
        raise InvalidInput.for_field(
            "roles",
            f"{', '.join(extra)} is not one of your roles",
            f"a subset of your roles ({', '.join(identity.roles) or 'none'})",
        )
    expires_in = None if body.expires == NEVER else tokens.parse_duration(body.expires)
    issued = tokens.issue_token(
        session,
        user_ref=identity.ref,
        roles=roles,
        groups=identity.groups,
        name=body.name,
        created_by=identity.ref,
        expires_in=expires_in,
    )
    return TokenCreated(token=ApiTokenOut.model_validate(issued.token), secret=issued.secret)


def _revoke(request: Request, session: Session, identity: Identity, token_id: int) -> ApiToken:
    """Revoke, and forget the token here at once (other replicas within their cache time)."""
    revoked = tokens.revoke_token(session, token_id, by=identity)
    request.app.state.token_cache.forget(token_id)
    return revoked


@api.get("/tokens")
def list_tokens(
    identity: Annotated[Identity, requires(actions.TOKEN_READ)], session: SessionDep
) -> list[ApiTokenOut]:
    """Your API tokens, newest first (never the secrets)."""
    return [
        ApiTokenOut.model_validate(t) for t in tokens.list_tokens(session, user_ref=identity.ref)
    ]


@api.post("/tokens", status_code=201)
def create_token(
    body: TokenCreate,
    identity: Annotated[Identity, requires(actions.TOKEN_CREATE)],
    session: SessionDep,
) -> TokenCreated:
    """Create an API token for yourself; the answer holds the secret, once."""
    return create_token_for(session, identity, body)


@api.delete("/tokens/{token_id}")
def revoke_token(
    request: Request,
    token_id: int,
    identity: Annotated[Identity, requires(actions.TOKEN_REVOKE)],
    session: SessionDep,
) -> ApiTokenOut:
    """Revoke one of your API tokens; it stops working at once."""
    return ApiTokenOut.model_validate(_revoke(request, session, identity, token_id))


# -- The account page -------------------------------------------------------------------


def _account_page(
    request: Request, session: Session, identity: Identity, **extra: Any
) -> HTMLResponse:
    context = {
        "me": identity,
        "tokens": tokens.list_tokens(session, user_ref=identity.ref),
        "default_expiry": DEFAULT_EXPIRY,
        **extra,
    }
    return _shell(request).render(request, "auth/account.html", context)


@router.get("/account")
def account_page(
    request: Request,
    identity: Annotated[Identity, requires(actions.TOKEN_READ)],
    session: SessionDep,
) -> HTMLResponse:
    """Who you are, your roles and groups, and your API tokens."""
    return _account_page(request, session, identity)


@router.post("/account/tokens")
def create_token_form(
    request: Request,
    identity: Annotated[Identity, requires(actions.TOKEN_CREATE)],
    session: SessionDep,
    name: Annotated[str, Form(min_length=1, max_length=100)],
    expires: Annotated[str, Form()] = DEFAULT_EXPIRY,
) -> HTMLResponse:
    """The create form of the account page: shows the new secret once."""
    created = create_token_for(session, identity, TokenCreate(name=name, expires=expires))
    return _account_page(request, session, identity, created=created)


@router.post("/account/tokens/{token_id}/revoke")
def revoke_token_form(
    request: Request,
    token_id: int,
    identity: Annotated[Identity, requires(actions.TOKEN_REVOKE)],
    session: SessionDep,
) -> RedirectResponse:
    _revoke(request, session, identity, token_id)
    return RedirectResponse("/account", status_code=303)

"""The policy gate: every route declares its action, and every request is decided.

``requires(action)`` is the one way a route says what it does. On each request it
resolves who is asking (an API token or the browser session), checks the CSRF token
of a browser's state-changing request, asks the policy engine, and writes the audit
log: every denial, and the outcome of every state-changing request.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Annotated, Any, TypeVar

from fastapi import Depends, FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.dependencies.models import Dependant
from fastapi.routing import RouteContext, iter_route_contexts
from sqlalchemy.engine import Engine
from sqlmodel import Session
from starlette.routing import BaseRoute, Mount

from portal import audit, db
from portal.actions import Action
from portal.auth import sessions, tokens
from portal.auth.identity import Identity
from portal.db import SessionDep
from portal.errors import Denied, EngineUnavailable, NotAuthenticated, PavedError
from portal.plugins import Plugins
from portal.policy import Decision, InProcessEngine, PolicyEngine
from portal.settings import Settings

log = logging.getLogger("paved.gate")

# The only routes that need no action: liveness, readiness, metrics scraping, static
# files, and signing in and out. They are recognised by the mark ``ungated`` puts on the
# core's own endpoints (and the static mount), never by path, so no plugin route can
# join them.
ALLOWLIST = frozenset(
    {
        "/healthz",
        "/readyz",
        "/metrics",
        "/static",
        "/auth/login",
        "/auth/local",
        "/auth/oidc/callback",
        "/auth/logout",
    }
)
STATIC_PATH = "/static"
POLICY_CONTEXT_HOOK = "paved_policy_context"
FACTS_FOR = "paved_facts_for"  # the actions a marked policy-context implementation serves
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")
SIGN_IN_NEEDED = "sign in to use Paved (a session, or an API token as `Authorization: Bearer`)"
CSRF_REFUSED = (
    "the request did not carry this portal's CSRF token, so it may not come from a Paved "
    "page; reload the page and try again"
)

Endpoint = TypeVar("Endpoint", bound=Callable[..., Any])
Hook = TypeVar("Hook", bound=Callable[..., Any])


def facts_for(*actions: Action | str) -> Callable[[Hook], Hook]:
    """Mark a ``paved_policy_context`` implementation as adding facts to these actions only.

    It is then not called for any other action (no query on every request), and the
    reads of hot paths keep their fast lane (``portal.fastlane``), which an unmarked
    implementation turns off."""
    names = frozenset(action.name if isinstance(action, Action) else action for action in actions)

    def mark(implementation: Hook) -> Hook:
        setattr(implementation, FACTS_FOR, names)
        return implementation

    return mark


def _adds_facts_to(action: str) -> Callable[[Callable[..., Any]], bool]:
    def adds(implementation: Callable[..., Any]) -> bool:
        names = getattr(implementation, FACTS_FOR, None)
        return names is None or action in names

    return adds


def ungated(endpoint: Endpoint) -> Endpoint:
    """Mark one of the core's own endpoints (probes, sign-in) as needing no action."""
    endpoint.paved_ungated = True  # type: ignore[attr-defined]
    return endpoint


@dataclass(frozen=True)
class Resource:
    """What an action is about, as the policy sees it (``input.resource``)."""

    ref: str
    kind: str
    owner: str | None = None
    labels: Mapping[str, str] = field(default_factory=dict)
    facts: Mapping[str, Any] = field(default_factory=dict)

    def as_input(self) -> dict[str, Any]:
        return {
            **self.facts,
            "ref": self.ref,
            "kind": self.kind,
            "owner": self.owner,
            "labels": dict(self.labels),
        }


async def sent_csrf_token(request: Request) -> str | None:
    """The CSRF token a state-changing request carries: header (htmx) or form field."""
    if request.method in SAFE_METHODS:
        return None
    header = request.headers.get(sessions.CSRF_HEADER)
    if header:
        return header
    if request.headers.get("content-type", "").startswith(FORM_TYPES):
        # Starlette keeps the parsed form, so the route's own Form parameters still work.
        value = (await request.form()).get(sessions.CSRF_FIELD)
        return value if isinstance(value, str) else None
    return None


async def current_identity(request: Request, session: SessionDep) -> Identity:
    """Who is asking: a bearer token first, else the browser's session; 401 if nobody."""
    authorization = request.headers.get("authorization")
    if authorization is not None:
        secret = bearer_secret(authorization)
        if secret is None:
            raise NotAuthenticated("expected `Authorization: Bearer pvd_...` (an API token)")
        cache: tokens.TokenCache = request.app.state.token_cache
        remembered = cache.get(secret)
        if remembered is None:
            identity = await run_in_threadpool(tokens.identify, session, secret)
            cache.put(secret, identity)
        else:
            identity = remembered
    else:
        settings: Settings = request.app.state.settings
        found = sessions.session_identity(request, settings) if "session" in request.scope else None
        if found is None:
            raise NotAuthenticated(SIGN_IN_NEEDED)
        identity = found
    request.state.identity = identity
    return identity


def bearer_secret(authorization: str) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header; None for any other."""
    scheme, _, secret = authorization.partition(" ")
    if scheme.lower() != "bearer" or not secret.strip():
        return None
    return secret.strip()


async def no_resource() -> Resource | None:
    """No resource: async, so it costs no trip through the thread pool."""
    return None


def requires(action: Action, *, resource: Callable[..., Any] = no_resource) -> Any:
    """Declare that a route performs ``action``, and decide it on every request.

    Use as ``dependencies=[requires(actions.X)]``, or as a parameter
    (``identity: Annotated[Identity, requires(actions.X)]``) to get who is asking.
    ``resource`` is a dependency (it may take path parameters and the session) that
    loads what the action is about; it runs only once the caller is known.
    """
    # Every dependency costs time on every request, so the gate is one plain async function
    # (no generator, no trip through the thread pool for a read): it decides on the event
    # loop when that cannot block (in-process Rego, no plugin facts to fetch), and leaves
    # the audit event of a state-changing request to the request's transaction.
    if resource is no_resource:

        async def gate(request: Request, session: SessionDep) -> Identity:
            identity = await current_identity(request, session)
            await _guard(action, request, session, identity, None)
            return identity

    else:

        async def may_try(
            request: Request,
            session: SessionDep,
            identity: Annotated[Identity, Depends(current_identity)],
        ) -> None:
            """Before the resource is looked up: a caller whose role cannot do the action
            at all is denied now, and learns nothing of the resource (not even whether it
            exists, or what a request for it must hold)."""
            decision = await run_in_threadpool(evaluate, request, action, identity, None)
            if not decision.allow:
                await _deny(request, session, identity, action, None, list(decision.reasons))
                raise denial(action, decision)

        async def gate(  # type: ignore[misc]
            request: Request,
            session: SessionDep,
            # Its own dependency, before the resource: who asks is known before anything
            # about the resource is looked up (or found missing).
            identity: Annotated[Identity, Depends(current_identity)],
            # Defaults, not Annotated: the annotations are strings that cannot see them.
            _may_try: None = Depends(may_try),
            target: Resource | None = Depends(resource),
        ) -> Identity:
            await _guard(action, request, session, identity, target)
            return identity

    gate.paved_action = action  # type: ignore[attr-defined]
    gate.paved_has_resource = resource is not no_resource  # type: ignore[attr-defined]
    return Depends(gate)


async def _guard(
    action: Action,
    request: Request,
    session: Session,
    identity: Identity,
    target: Resource | None,
) -> None:
    """Check CSRF and decide; a state-changing request's outcome is audited with its work
    (a POST that only reads, such as a query in the body, changes nothing)."""
    request.state.action = action
    unsafe = request.method not in SAFE_METHODS
    if (
        unsafe
        and identity.via == "session"
        and not sessions.csrf_matches(request, await sent_csrf_token(request))
    ):
        await _deny(request, session, identity, action, target, [CSRF_REFUSED])
        raise Denied(CSRF_REFUSED, reasons=[CSRF_REFUSED], action=action.name)
    try:
        if decides_without_blocking(request.app, action):
            decision = evaluate(request, action, identity, target)
        else:
            decision = await run_in_threadpool(evaluate, request, action, identity, target)
    except EngineUnavailable as exc:
        log.error("policy unavailable, %s denied: %s", action.name, exc)
        reason = f"the policy engine could not decide, so nothing is allowed: {exc.detail}"
        await _deny(request, session, identity, action, target, [reason])
        raise
    if not decision.allow:
        await _deny(request, session, identity, action, target, list(decision.reasons))
        raise denial(action, decision)
    if unsafe and not action.is_read:
        record = partial(_record, request, identity, action, target, reasons=decision.reasons)
        db.on_commit(session, partial(record, outcome="succeeded"))
        db.on_failure(session, lambda failed, exc: record(failed, outcome="failed", **_error(exc)))


def decides_without_blocking(app: FastAPI, action: Action) -> bool:
    """Whether ``action`` can be decided on the event loop: an in-process engine, and no
    plugin's facts to fetch for it."""
    return isinstance(app.state.policy, InProcessEngine) and not (
        app.state.plugins.implements(POLICY_CONTEXT_HOOK, only=_adds_facts_to(action.name))
    )


def policy_input(
    request: Request, action: Action, identity: Identity, target: Resource | None
) -> dict[str, Any]:
    """The input document of ARCHITECTURE.md, with the facts plugins add to ``context``."""
    state = request.app.state
    return policy_document(state.plugins, state.engine, state.settings, action, identity, target)


def policy_document(
    plugins: Plugins,
    engine: Engine,
    settings: Settings,
    action: Action,
    identity: Identity,
    target: Resource | None,
) -> dict[str, Any]:
    """The input document for ``identity`` doing ``action`` to ``target``, in a request or
    not (a task acting for the person who started it). ``engine`` is the database the
    plugins' facts are read from, ``settings`` the portal's."""
    user = identity.as_policy_user()
    resource = target.as_input() if target else None
    context: dict[str, Any] = {}
    failed: list[str] = []
    for plugin_name, facts in plugins.call(
        POLICY_CONTEXT_HOOK,
        failed=failed,
        only=_adds_facts_to(action.name),
        action=action.name,
        user=user,
        resource=resource,
        engine=engine,
        settings=settings,
    ):
        if facts is not None and not isinstance(facts, dict):
            plugins.degrade(
                plugin_name,
                f"paved_policy_context returned {type(facts).__name__}; expected a dict",
            )
            raise EngineUnavailable(
                f"plugin {plugin_name} gave the policy malformed facts, so nothing can be decided"
            )
        context.update(facts or {})
    if failed:
        raise EngineUnavailable(
            f"plugin {failed[0]} could not give the policy its facts, so nothing can be "
            "decided; see /admin/plugins"
        )
    return {"action": action.name, "user": user, "resource": resource, "context": context}


@dataclass(frozen=True)
class Authority:
    """Decides actions outside a request: work a task does for the person who started it."""

    policy: PolicyEngine
    plugins: Plugins
    engine: Engine  # the database plugins read the policy's facts from
    settings: Settings

    def decide(self, action: Action, identity: Identity, target: Resource | None) -> Decision:
        document = policy_document(
            self.plugins, self.engine, self.settings, action, identity, target
        )
        return self.policy.decide(document)


def denial(action: Action, decision: Decision) -> Denied:
    """The error a denied ``action`` raises, its reasons as the policy gave them."""
    return Denied(
        f"You may not {_lowercase_first(action.description)} ({action.name}).",
        reasons=list(decision.reasons) or ["the policy gave no reason"],
        action=action.name,
    )


def evaluate(
    request: Request, action: Action, identity: Identity, target: Resource | None
) -> Decision:
    decision: Decision = request.app.state.policy.decide(
        policy_input(request, action, identity, target)
    )
    return decision


def _lowercase_first(text: str) -> str:
    return text[:1].lower() + text[1:]


def _request_id(request: Request) -> str | None:
    value = getattr(request.state, "request_id", None)
    return value if isinstance(value, str) else None


def _detail(request: Request, identity: Identity, **extra: Any) -> dict[str, Any]:
    detail: dict[str, Any] = {
        "method": request.method,
        "path": request.url.path,
        "via": identity.via,
    }
    if identity.token_id is not None:
        detail["token_id"] = identity.token_id
    return {**detail, **extra}


def _record(
    request: Request,
    identity: Identity,
    action: Action,
    target: Resource | None,
    session: Session,
    *,
    outcome: str,
    reasons: Sequence[str],
    **detail: Any,
) -> None:
    """Append the audit event of this request to ``session``'s transaction."""
    audit.append_event(
        session,
        actor=identity.ref,
        action=action.name,
        resource=target.ref if target else None,
        allowed=outcome != "denied",
        reasons=reasons,
        request_id=_request_id(request),
        outcome=outcome,
        detail=_detail(request, identity, **detail),
    )


async def _deny(
    request: Request,
    session: Session,
    identity: Identity,
    action: Action,
    target: Resource | None,
    reasons: Sequence[str],
) -> None:
    """Audit a denial in a transaction of its own (nothing the request wrote goes with it)."""

    def write() -> None:
        session.rollback()
        _record(request, identity, action, target, session, outcome="denied", reasons=reasons)
        session.commit()

    await run_in_threadpool(write)


def _error(exc: Exception) -> dict[str, Any]:
    """What went wrong, for the audit event of a failed request."""
    error = exc.detail if isinstance(exc, PavedError) else type(exc).__name__
    status = exc.status if isinstance(exc, PavedError) else getattr(exc, "status_code", 500)
    return {"error": str(error)[:500], "status": status}


def _find_action(dependant: Dependant) -> Action | None:
    for dependency in dependant.dependencies:
        found = getattr(dependency.call, "paved_action", None)
        if isinstance(found, Action):
            return found
        nested = _find_action(dependency)
        if nested is not None:
            return nested
    return None


def walk_routes(routes: Sequence[BaseRoute]) -> Iterator[RouteContext]:
    """Every route as served, included routers flattened (with their prefixes and
    dependencies applied)."""
    yield from iter_route_contexts(routes)


def route_action(route: RouteContext) -> Action | None:
    """The action a route declared with ``requires``, or None."""
    dependant = getattr(route, "dependant", None)
    return _find_action(dependant) if isinstance(dependant, Dependant) else None


def is_ungated(route: RouteContext) -> bool:
    """On the allowlist: a core endpoint marked ``ungated``, or the static files mount."""
    if getattr(route.endpoint, "paved_ungated", False):
        return True
    original = route.original_route
    return isinstance(original, Mount) and original.path == STATIC_PATH

"""The fast lane: hot routes answered ahead of the framework, for callers the gate already
let through.

A prediction passes through the whole stack of a FastAPI app (middleware, routing,
dependency injection) for about 0.6 ms of CPU time here, as much as the rest of the hop. A
route of a ``hot_path`` router that reads (its action ``is_read``, no resource loader, an
endpoint that takes only its path parameters and the request) is answered here instead,
when everything the gate would decide is already remembered: the API token is in the
token cache, and the in-process policy engine decides without blocking and allows. Anything
else (no token, a session, a token not remembered, a denial, a policy that needs plugins'
facts) goes on to the framework and its gate, unchanged, so a denial is answered and audited
there as ever. Allowed reads are not audited, here or there.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI, Request
from fastapi.dependencies.models import Dependant
from fastapi.routing import RouteContext
from starlette.convertors import Convertor
from starlette.responses import Response
from starlette.routing import compile_path
from starlette.types import ASGIApp, Receive, Scope, Send

from portal.actions import Action
from portal.auth.identity import Identity
from portal.auth.tokens import TokenCache
from portal.errors import EngineUnavailable, PavedError
from portal.gate import bearer_secret, decides_without_blocking, evaluate
from portal.problems import respond_to_paved_error

Endpoint = Callable[..., Awaitable[Response]]


@dataclass(frozen=True)
class Lane:
    """A route the fast lane answers: its method and path, the action its gate decides,
    and its endpoint."""

    method: str
    route: RouteContext
    action: Action
    endpoint: Endpoint
    pattern: Any  # the compiled path
    convertors: dict[str, Convertor[Any]]

    def path_params(self, scope: Scope) -> dict[str, Any] | None:
        """The path parameters of a request for this lane, or None when it is not one."""
        if scope["method"] != self.method:
            return None
        found = self.pattern.match(scope["path"])
        if found is None:
            return None
        return {
            name: self.convertors[name].convert(value) for name, value in found.groupdict().items()
        }


def lane_of(route: RouteContext) -> Lane | None:
    """The lane of ``route`` if the fast lane can answer it exactly as the framework would:
    one method, an async endpoint taking only ``str`` path parameters and the request, and
    no dependency but a gate on a read without a resource. Else None."""
    dependant = getattr(route, "dependant", None)
    methods = route.methods or set()
    if not isinstance(dependant, Dependant) or len(methods) != 1 or route.path is None:
        return None
    if len(dependant.dependencies) != 1:
        return None
    gate = dependant.dependencies[0].call
    action = getattr(gate, "paved_action", None)
    if not isinstance(action, Action) or not action.is_read:
        return None
    if getattr(gate, "paved_has_resource", True):
        return None
    endpoint = route.endpoint
    if endpoint is None or not inspect.iscoroutinefunction(endpoint):
        return None
    pattern, _, convertors = compile_path(route.path)
    for name, parameter in inspect.signature(endpoint).parameters.items():
        is_text = name in convertors and parameter.annotation in (str, "str")
        if name != "request" and not is_text:
            return None  # the framework would have to fill it in
    (method,) = methods
    return Lane(method, route, action, endpoint, pattern, convertors)


class FastLane:
    """ASGI middleware answering the ``lanes`` it can; place it inside the request-id and
    metrics middleware, so that its answers are logged and counted like any other."""

    def __init__(self, app: ASGIApp, fastapi: FastAPI, lanes: Sequence[Lane]) -> None:
        self.app = app
        self.fastapi = fastapi
        self.lanes = list(lanes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            for lane in self.lanes:
                path_params = lane.path_params(scope)
                if path_params is not None:
                    if await self._answer(lane, path_params, scope, receive, send):
                        return
                    break
        await self.app(scope, receive, send)

    async def _answer(
        self, lane: Lane, path_params: dict[str, Any], scope: Scope, receive: Receive, send: Send
    ) -> bool:
        """Answer the request, or return False, having read nothing of it, to leave it to
        the framework."""
        identity = _remembered_caller(scope, self.fastapi.state.token_cache)
        if identity is None or not decides_without_blocking(self.fastapi, lane.action):
            return False
        request = Request(scope, receive)
        try:
            decision = evaluate(request, lane.action, identity, None)
        except EngineUnavailable:
            return False
        if not decision.allow:
            return False  # the framework denies it, with its reasons and its audit event
        scope["route"] = lane.route  # for the access log and the metrics, as routing does
        scope["path_params"] = path_params
        request.state.identity = identity
        request.state.action = lane.action
        try:
            response = await lane.endpoint(request=request, **path_params)
        except PavedError as exc:
            response = await respond_to_paved_error(request, exc)
        await response(scope, receive, send)
        return True


def _remembered_caller(scope: Scope, cache: TokenCache) -> Identity | None:
    """The caller of an API token the token cache remembers; None for anyone else."""
    for name, value in scope["headers"]:
        if name == b"authorization":
            secret = bearer_secret(value.decode("latin-1"))
            return None if secret is None else cache.get(secret)
    return None

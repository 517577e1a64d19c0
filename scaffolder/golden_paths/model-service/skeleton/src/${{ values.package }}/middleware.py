"""ASGI middleware: every request timed, counted and written to the access log as one JSON
line; request bodies held under a size limit."""

from __future__ import annotations

import logging
import time
import uuid

from fastapi import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ${{ values.package }}.metrics import Recorder

access_log = logging.getLogger("${{ values.package }}.access")
# The route label of requests that matched no route: one label for them all keeps the
# number of series bounded whatever paths scanners try.
UNMATCHED = "unmatched"


class ObserveRequests:
    """Times every HTTP request, records it by the route it matched, and logs it; each
    answer carries an X-Request-ID, the caller's or a new one, which the log line names."""

    def __init__(self, app: ASGIApp, *, recorder: Recorder) -> None:
        self.app = app
        self.recorder = recorder

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        request_id = _request_id(scope)
        status = 500  # what the client gets if the app raises before answering

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", []), (b"x-request-id", request_id)]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            seconds = time.perf_counter() - started
            route = getattr(scope.get("route"), "path", UNMATCHED)
            self.recorder.record(route, status, seconds)
            access_log.info(
                "request",
                extra={
                    "request_id": request_id.decode(),
                    "method": scope["method"],
                    "path": scope["path"],
                    "route": route,
                    "status": status,
                    "duration_ms": round(seconds * 1000, 3),
                    "client": scope["client"][0] if scope.get("client") else None,
                },
            )


class LimitBodySize:
    """Answers 413 to a request body over ``max_bytes``: before a byte of it is read when
    its Content-Length says so, else as soon as the bytes read pass the limit (a chunked
    body has no length)."""

    def __init__(self, app: ASGIApp, *, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _header(scope, b"content-length")
        is_declared_too_large = declared.isdigit() and int(declared) > self.max_bytes
        received = 0

        # Raised inside the route, as it reads the body: FastAPI answers it, and the route
        # is known by then, so the 413 is counted against it.
        async def receive_within_limit() -> Message:
            nonlocal received
            if is_declared_too_large:
                raise HTTPException(413, detail=self.refusal)
            message = await receive()
            received += len(message.get("body", b""))
            if received > self.max_bytes:
                raise HTTPException(413, detail=self.refusal)
            return message

        await self.app(scope, receive_within_limit, send)

    @property
    def refusal(self) -> str:
        return f"the request body is over the limit of {self.max_bytes} bytes"


def _header(scope: Scope, name: bytes) -> str:
    """The value of header ``name`` (lower-case), or an empty string."""
    return next((value.decode("latin-1") for key, value in scope["headers"] if key == name), "")


def _request_id(scope: Scope) -> bytes:
    """The caller's X-Request-ID if it is a short printable token, else a new one."""
    given = _header(scope, b"x-request-id")
    if 0 < len(given) <= 128 and given.isprintable() and given.isascii():
        return given.encode()
    return uuid.uuid4().hex.encode()

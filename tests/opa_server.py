"""A stand-in OPA server for the tests: it speaks OPA's REST Data API.

No OPA binary can be installed on the test machines, so the remote policy mode is tested
against this: ``POST /v1/data/<path>`` with ``{"input": ...}`` answers ``{"result": ...}``
(or ``{}`` when the rule is undefined), evaluating the same Rego with regorus. ``delay``
makes it slow, to test timeouts.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from portal.policy import POLICY_DIR, PolicySource, build_engine

from processes import serve_in_thread


@dataclass
class FakeOpa:
    url: str
    delay: float = 0.0
    requests: int = 0


@contextmanager
def serve_opa(folders: list[Path] | None = None) -> Iterator[FakeOpa]:
    source = PolicySource.read(folders or [POLICY_DIR])
    lock = threading.Lock()
    server_state = FakeOpa(url="")

    async def data(request: Request) -> JSONResponse:
        server_state.requests += 1
        if server_state.delay:
            time.sleep(server_state.delay)
        body = await request.json()
        rule = "data." + request.path_params["path"].strip("/").replace("/", ".")
        with lock:  # a regorus engine stays on the thread that made it: build one per call
            engine = build_engine(source)
            engine.set_input(body.get("input", {}))
            try:
                result = engine.eval_rule(rule)
            except RuntimeError:
                return JSONResponse({})
        return JSONResponse({} if result is None else {"result": result})

    app = Starlette(routes=[Route("/v1/data/{path:path}", data, methods=["POST"])])
    with serve_in_thread(app) as url:
        server_state.url = url
        yield server_state

"""Operational endpoints: liveness, readiness and Prometheus metrics (ungated)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.responses import JSONResponse, Response

from portal.gate import ungated
from portal.health import run_checks

router = APIRouter(tags=["operations"])


@router.get("/healthz")
@ungated
async def healthz() -> dict[str, str]:
    """The process is alive and serving."""
    return {"status": "ok"}


@router.get("/readyz")
@ungated
async def readyz(request: Request) -> JSONResponse:
    """Ready to serve: database reachable, schema at head, every plugin check passing."""
    checks = await run_in_threadpool(run_checks, request.app, request.app.state.readiness_checks)
    ready = all(result["ok"] for result in checks.values())
    return JSONResponse(
        {"status": "ready" if ready else "not ready", "checks": checks},
        status_code=200 if ready else 503,
    )


@router.get("/metrics")
@ungated
def metrics(request: Request) -> Response:
    """Request counts and latencies per route template, in Prometheus text format."""
    return Response(
        generate_latest(request.app.state.metrics.registry), media_type=CONTENT_TYPE_LATEST
    )

"""The serving REST API under ``/api/serving``, and the router at ``/serve/{deployment}``.

Deploying starts a task (the new versions must answer before anything switches); a canary's
share, a promotion and a rollback switch the router at once, and a task then stops what no
longer takes traffic.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool
from sqlmodel import Session
from starlette.responses import Response

from plugins.serving import actions, service, views
from plugins.serving.alerts import find_alerts
from plugins.serving.models import (
    Deployment,
    DeploymentOut,
    DeploymentPatch,
    DriftOut,
    MetricPoint,
)
from plugins.serving.resources import deploy_asked, deployment_of, patched_deployment
from plugins.serving.traffic import Traffic
from portal import Identity, requires, tasks
from portal.db import SessionDep, utcnow
from portal.models import TaskLogOut

router = APIRouter(prefix="/api/serving", tags=["serving"])
serve_router = APIRouter(tags=["serving"])

INVOCATION_EXAMPLE = {"dataframe_split": {"columns": ["amount", "items"], "data": [[12.5, 3]]}}


def traffic_of(request: Request) -> Traffic:
    traffic: Traffic = request.app.state.serving_traffic
    return traffic


def shown(
    request: Request,
    deployment: Deployment,
    session: Session | None = None,
    *,
    drift: list[DriftOut] | None = None,
) -> DeploymentOut:
    """The deployment with its window's figures; with ``session``, one deployment's view:
    its history and its alerts too (from ``drift``, or drift computed here)."""
    traffic = traffic_of(request)
    found = views.shown(
        deployment,
        base_url=str(request.base_url),
        metrics=dict(traffic.metrics.snapshot(deployment.name)),
        events=service.list_events(session, deployment) if session is not None else None,
    )
    if session is not None:
        settings = traffic.settings.serving
        found.alerts = find_alerts(
            found,
            list_drift(request, deployment) if drift is None else drift,
            min_requests=settings.min_canary_requests,
            window=settings.metrics_window,
        )
    return found


def list_drift(request: Request, deployment: Deployment) -> list[DriftOut]:
    return [DriftOut.model_validate(found) for found in traffic_of(request).drift(deployment)]


def list_metric_points(session: Session, name: str, minutes: int) -> list[MetricPoint]:
    """The last ``minutes`` of ``name``'s per-minute figures, one point per version and
    minute."""
    service.get_deployment(session, name)
    rows = views.metric_history(session, name, utcnow() - timedelta(minutes=minutes))
    return views.merged_minutes(rows)


@router.post("/deployments", status_code=202)
def create_deployment(
    request: Request,
    session: SessionDep,
    user: Annotated[Identity, requires(actions.DEPLOYMENT_CREATE, resource=deploy_asked)],
) -> DeploymentOut:
    """Deploy a registered version: a new deployment, a new stable version (switched once it
    answers; the one it replaces stays warm for a rollback), or a canary beside the stable
    one with ``canary_percent`` of the traffic. Production takes an approved version, training
    data with a clean PII scan or an approved classification, and monitoring configured.
    Follow the task (``task_id``) to see it come up."""
    deployment = service.deploy(
        session, request.state.target, by=user, settings=request.app.state.settings
    )
    return shown(request, deployment)


@router.get("/deployments", dependencies=[requires(actions.DEPLOYMENT_READ)])
def list_deployments(
    request: Request,
    session: SessionDep,
    model: Annotated[str | None, Query(description="Only this registered model's")] = None,
    owner: Annotated[str | None, Query(description="Only this group's")] = None,
) -> list[DeploymentOut]:
    found = service.list_deployments(session, model=model, owner=owner)
    return [shown(request, deployment) for deployment in found]


@router.get("/deployments/{name}", dependencies=[requires(actions.DEPLOYMENT_READ)])
def get_deployment(name: str, request: Request, session: SessionDep) -> DeploymentOut:
    """A deployment with its versions' figures in the router's window and its history."""
    return shown(request, service.get_deployment(session, name), session)


@router.patch("/deployments/{name}")
def update_deployment(
    name: str,
    request: Request,
    session: SessionDep,
    user: Annotated[Identity, requires(actions.DEPLOYMENT_UPDATE, resource=patched_deployment)],
) -> DeploymentOut:
    """Change the canary's share of traffic (0-100) or promote it to stable, at once."""
    patch: DeploymentPatch = request.state.patch
    deployment = service.get_deployment(session, name)
    if patch.canary_percent is not None:
        runtimes = request.app.state.serving_runtimes
        service.set_canary_percent(
            session, deployment, patch.canary_percent, by=user, runtimes=runtimes
        )
    if patch.promote:
        service.promote(session, deployment, by=user)
    return shown(request, deployment, session)


@router.post("/deployments/{name}/rollback")
def rollback_deployment(
    name: str,
    request: Request,
    session: SessionDep,
    user: Annotated[Identity, requires(actions.DEPLOYMENT_ROLLBACK, resource=deployment_of)],
) -> DeploymentOut:
    """Send the traffic back at once: off the canary, or to the version before the last
    promotion; a deploy in progress is called off."""
    deployment = service.rollback(session, service.get_deployment(session, name), by=user)
    return shown(request, deployment, session)


@router.delete("/deployments/{name}", status_code=202)
def delete_deployment(
    name: str,
    request: Request,
    session: SessionDep,
    user: Annotated[Identity, requires(actions.DEPLOYMENT_DELETE, resource=deployment_of)],
) -> DeploymentOut:
    """Stop serving: requests are refused at once; a task stops the servers."""
    deployment = service.remove(session, service.get_deployment(session, name), by=user)
    traffic_of(request).forget(name)
    return shown(request, deployment)


@router.get("/deployments/{name}/metrics", dependencies=[requires(actions.DEPLOYMENT_READ)])
def deployment_metrics(
    name: str,
    session: SessionDep,
    minutes: Annotated[int, Query(ge=1, le=60 * 24 * 31)] = 60,
) -> list[MetricPoint]:
    """Requests, errors and latency per version and minute: the charts' data."""
    return list_metric_points(session, name, minutes)


@router.get("/deployments/{name}/drift", dependencies=[requires(actions.DEPLOYMENT_READ)])
def deployment_drift(name: str, request: Request, session: SessionDep) -> list[DriftOut]:
    """Each feature of the training data against the requests this portal routed: the
    population stability index, and whether it is over the drift threshold."""
    return list_drift(request, service.get_deployment(session, name))


@router.get("/deployments/{name}/log", dependencies=[requires(actions.DEPLOYMENT_READ)])
def deployment_log(
    name: str,
    session: SessionDep,
    after: Annotated[int, Query(ge=0, description="Only lines with a greater id")] = 0,
    limit: Annotated[int, Query(ge=1, le=5000)] = 1000,
) -> list[TaskLogOut]:
    """The log of the deployment's latest task (bringing versions up, stopping them)."""
    deployment = service.get_deployment(session, name)
    if deployment.task_id is None:
        return []
    return [
        TaskLogOut.model_validate(line)
        for line in tasks.list_log_lines(session, deployment.task_id, after=after, limit=limit)
    ]


@serve_router.post(
    "/serve/{name}/invocations",
    dependencies=[requires(actions.PREDICTION_READ)],
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {
                    "schema": {
                        "type": "object",
                        "description": "MLflow's scoring protocol: one of dataframe_split, "
                        "dataframe_records, instances or inputs",
                    },
                    "example": INVOCATION_EXAMPLE,
                },
                "text/csv": {"schema": {"type": "string"}},
            },
        }
    },
    response_class=Response,
)
async def invoke(name: str, request: Request) -> Response:
    """Predictions from a deployment: the request goes to the stable version or, for the
    canary's share, to the canary, as it is; the answer names the version in
    ``X-Paved-Version``."""
    traffic = traffic_of(request)
    entry = traffic.cached(name)
    if entry is None:
        entry = await run_in_threadpool(traffic.entry, name)
    if entry.route is None:
        assert entry.problem is not None, "a route or why there is none"
        raise entry.problem
    answer = await traffic.forward(
        entry.route, await request.body(), request.headers.get("content-type")
    )
    return Response(
        content=answer.body,
        status_code=answer.status,
        headers={**answer.headers, "X-Paved-Version": answer.version},
    )

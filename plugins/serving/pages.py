"""Serving's pages: every deployment, a deployment's page (what serves, its alerts, figures,
charts, drift and history, with Rollback, Promote and the canary's share), and the Serving
tab of Model pages with its Deploy form.

Every page works without JavaScript: the buttons post forms and redirect, and the charts'
figures are also a table. With JavaScript the charts draw and redraw as requests come in.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from catalog import service as catalog
from catalog.pages import entity_url
from catalog.refs import EntityRef
from plugins.registry import service as registry
from plugins.serving import actions, api, service
from plugins.serving.models import DeploymentOut, DeploymentPatch, VersionMetricsOut
from plugins.serving.resources import (
    canary_percent_from_form,
    deploy_from_form,
    deployment_of,
    promotion_from_form,
)
from portal import Identity, PavedError, requires
from portal.auth.sessions import safe_next
from portal.db import SessionDep
from portal.settings import Settings
from portal.shell import Shell

router = APIRouter(include_in_schema=False)

CHART_MINUTES = 60


def _shell(request: Request) -> Shell:
    shell: Shell = request.app.state.shell
    return shell


def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def _deployment_url(name: str) -> str:
    return f"/serving/deployments/{name}"


def _back_or(back: str, default: str) -> str:
    """Where a form asked to go back to: a page of this portal only, never another site."""
    return safe_next(back) if back else default


def _redirect(request: Request, target: str) -> Response:
    """See ``target``: htmx follows ``HX-Redirect`` (it would swap a redirect's page in)."""
    if request.headers.get("HX-Request") == "true":
        return Response(status_code=204, headers={"HX-Redirect": target})
    return RedirectResponse(target, status_code=303)


# -- What the deployment page shows ----------------------------------------------------------


@dataclass(frozen=True)
class VersionRow:
    """A version of a deployment, what it does now, and its figures in the router's window."""

    version: str
    role: str
    figures: VersionMetricsOut | None


def list_version_rows(deployment: DeploymentOut) -> list[VersionRow]:
    """Stable, canary and the previous version kept warm, then any other version that still
    has figures in the window (a canary just rolled back)."""
    roles: dict[str, str] = {}
    if deployment.stable_version:
        roles[deployment.stable_version] = "stable"
    if deployment.canary_version:
        roles[deployment.canary_version] = f"canary, {deployment.canary_percent}% of traffic"
    if deployment.previous_version and deployment.previous_version not in roles:
        roles[deployment.previous_version] = "previous, kept warm for a rollback"
    for version in sorted(deployment.metrics):
        roles.setdefault(version, "no longer takes traffic")
    return [
        VersionRow(version, role, deployment.metrics.get(version))
        for version, role in roles.items()
    ]


def can_roll_back(deployment: DeploymentOut) -> bool:
    """Whether Rollback has something to do (the service says why not, otherwise)."""
    previous_runs = deployment.previous_version in deployment.endpoints
    return bool(deployment.canary_version or deployment.pending or previous_runs)


# -- Pages -----------------------------------------------------------------------------------


@router.get("/serving", dependencies=[requires(actions.DEPLOYMENT_READ)])
def deployments_page(request: Request, session: SessionDep) -> HTMLResponse:
    """Every deployment: what it serves and how it is doing."""
    deployments = [api.shown(request, found) for found in service.list_deployments(session)]
    context = {"deployments": deployments, "entity_url": entity_url}
    return _shell(request).render(request, "serving/deployments.html", context)


@router.get("/serving/deployments/{name}", dependencies=[requires(actions.DEPLOYMENT_READ)])
def deployment_page(name: str, request: Request, session: SessionDep) -> HTMLResponse:
    """A deployment: what serves, alerts, figures, charts, drift, history and its buttons."""
    found = service.get_deployment(session, name)
    drift = api.list_drift(request, found)
    deployment = api.shown(request, found, session, drift=drift)
    serving_settings = _settings(request).serving
    context: dict[str, Any] = {
        "deployment": deployment,
        "alerts": deployment.alerts,
        "versions": list_version_rows(deployment),
        "window": serving_settings.metrics_window,
        "drift": drift,
        "points": api.list_metric_points(session, name, CHART_MINUTES),
        "chart_minutes": CHART_MINUTES,
        "can_roll_back": can_roll_back(deployment),
        "back": _deployment_url(name),
        "entity_url": entity_url,
    }
    return _shell(request).render(request, "serving/deployment.html", context)


@router.get(
    "/serving/tabs/{kind}/{namespace}/{name}", dependencies=[requires(actions.DEPLOYMENT_READ)]
)
def model_tab(
    kind: str, namespace: str, name: str, request: Request, session: SessionDep
) -> HTMLResponse:
    """The Serving tab: the model's deployments with their buttons, and the Deploy form."""
    entity = catalog.get_entity(session, EntityRef(kind, namespace, name))
    registered = str(entity.body.get("spec", {}).get("registeredModel") or name)
    context: dict[str, Any] = {
        "model": registered,
        "versions": [],
        "problem": None,
        "environments": _settings(request).serving.environments,
        "back": entity_url(EntityRef(kind, namespace, name)) + "?tab=serving",
    }
    try:
        context["versions"] = registry.list_versions(session, registered, _settings(request))
    except PavedError as exc:
        context["problem"] = exc.detail
    found = service.list_deployments(session, model=registered)
    context["deployments"] = [api.shown(request, deployment) for deployment in found]
    context["can_roll_back"] = can_roll_back
    return _shell(request).render(request, "serving/tab.html", context)


# -- Forms -----------------------------------------------------------------------------------


@router.post("/serving/deployments")
def deploy_from_page(
    request: Request,
    session: SessionDep,
    user: Annotated[Identity, requires(actions.DEPLOYMENT_CREATE, resource=deploy_from_form)],
) -> Response:
    """The Deploy form: a task brings the version up; its deployment's page follows it."""
    deployment = service.deploy(session, request.state.target, by=user, settings=_settings(request))
    return _redirect(request, _deployment_url(deployment.name))


@router.post("/serving/deployments/{name}/rollback")
def rollback_from_page(
    name: str,
    request: Request,
    session: SessionDep,
    user: Annotated[Identity, requires(actions.DEPLOYMENT_ROLLBACK, resource=deployment_of)],
    back: Annotated[str, Form()] = "",
) -> Response:
    service.rollback(session, service.get_deployment(session, name), by=user)
    return _redirect(request, _back_or(back, _deployment_url(name)))


@router.post("/serving/deployments/{name}/promote")
def promote_from_page(
    name: str,
    request: Request,
    session: SessionDep,
    user: Annotated[Identity, requires(actions.DEPLOYMENT_UPDATE, resource=promotion_from_form)],
    back: Annotated[str, Form()] = "",
) -> Response:
    service.promote(session, service.get_deployment(session, name), by=user)
    return _redirect(request, _back_or(back, _deployment_url(name)))


@router.post("/serving/deployments/{name}/canary")
def canary_percent_from_page(
    name: str,
    request: Request,
    session: SessionDep,
    user: Annotated[
        Identity, requires(actions.DEPLOYMENT_UPDATE, resource=canary_percent_from_form)
    ],
    back: Annotated[str, Form()] = "",
) -> Response:
    patch: DeploymentPatch = request.state.patch
    percent = patch.canary_percent
    assert percent is not None, "canary_percent_from_form refuses a form without it"
    deployment = service.get_deployment(session, name)
    runtimes = request.app.state.serving_runtimes
    service.set_canary_percent(session, deployment, percent, by=user, runtimes=runtimes)
    return _redirect(request, _back_or(back, _deployment_url(name)))

"""What serving's actions are about, as the policy sees it: the deploy asked for (the model
version with its approval, its training data and its monitoring, checked by the production
rule) and an existing deployment. A loader keeps what it found on the request."""

from __future__ import annotations

from fastapi import Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError

from plugins.serving import service, targets
from plugins.serving.models import DeployIn, DeploymentPatch
from portal import Resource, Settings
from portal.db import SessionDep
from portal.errors import InvalidInput


def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def _target(request: Request, session: SessionDep, asked: DeployIn) -> Resource:
    target = await run_in_threadpool(
        targets.find_target, session, asked, _settings(request), request.app.state.serving_runtimes
    )
    request.state.target = target
    return target.resource()


async def deploy_asked(request: Request, session: SessionDep) -> Resource:
    """The deploy ``POST /api/serving/deployments`` asks for."""
    try:
        asked = DeployIn.model_validate(await request.json())
    except ValidationError as exc:
        raise RequestValidationError(exc.errors(include_url=False)) from None
    except ValueError:
        raise InvalidInput.for_field(
            "body", "not JSON", '{"model": "churn", "version": "3", "environment": "staging"}'
        ) from None
    return await _target(request, session, asked)


async def deploy_from_form(request: Request, session: SessionDep) -> Resource:
    """The deploy the Deploy button of a model page asks for."""
    form = await request.form()
    fields = {
        name: str(form[name])
        for name in ("model", "version", "environment", "canary_percent")
        if form.get(name) not in (None, "")
    }
    try:
        asked = DeployIn.model_validate(fields)
    except ValidationError as exc:
        raise RequestValidationError(exc.errors(include_url=False)) from None
    return await _target(request, session, asked)


def deployment_of(name: str, session: SessionDep) -> Resource:
    """An existing deployment (kept on the request for the route)."""
    return service.deployment_resource(service.get_deployment(session, name))


async def patched_deployment(name: str, request: Request, session: SessionDep) -> Resource:
    """A deployment and the change asked for (a canary's share, or its promotion)."""
    try:
        fields = await request.json()
    except ValueError:
        raise InvalidInput.for_field("body", "not JSON", '{"canary_percent": 25}') from None
    return _patched(name, request, session, fields)


async def canary_percent_from_form(name: str, request: Request, session: SessionDep) -> Resource:
    """A deployment and the canary share its page's form asks for."""
    form = await request.form()
    if form.get("canary_percent") in (None, ""):
        raise InvalidInput.for_field("canary_percent", "missing", "a number from 0 to 100")
    return _patched(name, request, session, {"canary_percent": str(form["canary_percent"])})


def promotion_from_form(name: str, request: Request, session: SessionDep) -> Resource:
    """A deployment whose canary the Promote button asks to make stable."""
    return _patched(name, request, session, {"promote": True})


def _patched(name: str, request: Request, session: SessionDep, fields: object) -> Resource:
    """The policy sees one shape of change, whether it came as JSON or from a form."""
    try:
        patch = DeploymentPatch.model_validate(fields)
    except ValidationError as exc:
        raise RequestValidationError(exc.errors(include_url=False)) from None
    request.state.patch = patch
    deployment = service.get_deployment(session, name)
    return service.deployment_resource(
        deployment, canary_percent=patch.canary_percent, promote=patch.promote
    )

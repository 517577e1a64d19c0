"""The registry REST API under ``/api/registry``: models, versions with their lineage,
registration from a run, approvals and aliases."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from pydantic import ValidationError

from plugins.registry import actions, service
from plugins.registry.models import AliasIn, ApprovalIn, ModelOut, RegisterIn, VersionOut
from portal import Identity, Resource, requires
from portal.db import SessionDep
from portal.errors import InvalidInput
from portal.settings import Settings

router = APIRouter(prefix="/api/registry", tags=["registry"])


def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def _resource(facts: service.ModelFacts, **more: object) -> Resource:
    return Resource(
        ref=facts.ref,
        kind="Model",
        owner=facts.owner,
        facts={
            "registered_model": facts.name,
            "version": facts.version,
            "requested_by": facts.requested_by,
            "approved": facts.is_approved,
            **more,
        },
    )


async def model_of(name: str, request: Request, session: SessionDep) -> Resource:
    """A registered model, as the policy sees it: its Model entity's owner."""
    facts = await run_in_threadpool(service.model_facts, session, name, None, _settings(request))
    return _resource(facts)


async def version_of(name: str, version: str, request: Request, session: SessionDep) -> Resource:
    """One version: who registered it and whether a team lead approved it."""
    facts = await run_in_threadpool(service.model_facts, session, name, version, _settings(request))
    return _resource(facts)


async def alias_target(name: str, alias: str, request: Request, session: SessionDep) -> Resource:
    """The version an alias is asked to point at, with the alias (``champion`` needs an
    approved version)."""
    try:
        body = AliasIn.model_validate(await request.json())
    except (ValueError, ValidationError):
        raise InvalidInput.for_field(
            "version", "missing or not a number", '{"version": "3"}'
        ) from None
    facts = await run_in_threadpool(
        service.model_facts, session, name, body.version, _settings(request)
    )
    return _resource(facts, alias=alias)


@router.get("/models", dependencies=[requires(actions.MODEL_READ)])
def list_models(request: Request, session: SessionDep) -> list[ModelOut]:
    """Registered models with their Model entity, owner and aliases."""
    return service.list_models(session, _settings(request))


@router.get("/models/{name}/versions", dependencies=[requires(actions.MODEL_READ)])
def list_versions(name: str, request: Request, session: SessionDep) -> list[VersionOut]:
    """The model's versions, newest first, with metrics, parameters, run, commit, data and
    approvals."""
    return service.list_versions(session, name, _settings(request))


@router.post("/models/{name}/versions", status_code=201)
def register_version(
    name: str,
    body: RegisterIn,
    request: Request,
    session: SessionDep,
    user: Annotated[Identity, requires(actions.MODEL_REGISTER, resource=model_of)],
) -> VersionOut:
    """Register the model a run logged as the next version."""
    return service.register_version(
        session,
        name,
        run_id=body.run_id,
        artifact_path=body.artifact_path,
        description=body.description,
        by=user,
        settings=_settings(request),
    )


@router.post("/models/{name}/versions/{version}/approvals", status_code=201)
def approve_version(
    name: str,
    version: str,
    body: ApprovalIn,
    request: Request,
    session: SessionDep,
    user: Annotated[Identity, requires(actions.MODEL_APPROVE, resource=version_of)],
) -> VersionOut:
    """A team lead of the owning team (not the one who registered it) approves or rejects
    the version for production."""
    return service.decide_approval(
        session,
        name,
        version,
        decision=body.decision,
        comment=body.comment,
        by=user,
        settings=_settings(request),
    )


@router.put(
    "/models/{name}/aliases/{alias}",
    dependencies=[requires(actions.MODEL_PROMOTE, resource=alias_target)],
)
def set_alias(
    name: str, alias: str, body: AliasIn, request: Request, session: SessionDep
) -> VersionOut:
    """Point an alias at a version; ``champion`` (production) only at an approved one."""
    return service.set_alias(session, name, alias, body.version, settings=_settings(request))

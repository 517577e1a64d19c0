"""The registry REST API under ``/api/registry``: models, versions with their lineage,
registration from a run, approvals and aliases."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Request

from plugins.registry import actions, service
from plugins.registry.models import AliasIn, ApprovalIn, ModelOut, RegisterIn, VersionOut
from plugins.registry.resources import alias_target, model_of, version_of
from portal import Identity, requires
from portal.db import SessionDep
from portal.settings import Settings

router = APIRouter(prefix="/api/registry", tags=["registry"])


def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


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

"""What the registry's actions are about, as the policy sees it: a registered model (its Model
entity's owner) and one of its versions (who registered it, whether it is approved), with
the alias asked for."""

from __future__ import annotations

from fastapi import Request
from fastapi.concurrency import run_in_threadpool
from pydantic import ValidationError

from plugins.registry import service
from plugins.registry.models import AliasIn
from portal import Resource, Settings
from portal.db import SessionDep
from portal.errors import InvalidInput


def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def model_resource(facts: service.ModelFacts, *, alias: str | None = None) -> Resource:
    return Resource(
        ref=facts.ref,
        kind="Model",
        owner=facts.owner,
        facts={
            "registered_model": facts.name,
            "version": facts.version,
            "requested_by": facts.requested_by,
            "approved": facts.is_approved,
            "alias": alias,
        },
    )


async def _facts(
    request: Request, session: SessionDep, name: str, version: str | None
) -> service.ModelFacts:
    return await run_in_threadpool(service.model_facts, session, name, version, _settings(request))


async def model_of(name: str, request: Request, session: SessionDep) -> Resource:
    """A registered model."""
    return model_resource(await _facts(request, session, name, None))


async def version_of(name: str, version: str, request: Request, session: SessionDep) -> Resource:
    """One version of a registered model."""
    return model_resource(await _facts(request, session, name, version))


async def alias_target(name: str, alias: str, request: Request, session: SessionDep) -> Resource:
    """The version an alias is asked to point at (``champion`` needs an approved one)."""
    try:
        body = AliasIn.model_validate(await request.json())
    except (ValueError, ValidationError):
        raise InvalidInput.for_field(
            "version", "missing or not a number", '{"version": "3"}'
        ) from None
    return model_resource(await _facts(request, session, name, body.version), alias=alias)


async def version_from_form(request: Request, session: SessionDep) -> Resource:
    """The version the Approve or Make champion button names."""
    form = await request.form()
    name, version = str(form.get("model", "")), str(form.get("version", ""))
    alias = str(form.get("alias", "")) or None
    return model_resource(await _facts(request, session, name, version), alias=alias)

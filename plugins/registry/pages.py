"""The registry's pages: the Registry tab of Model pages (versions, lineage, aliases,
approvals and the model card), with forms to approve a version and to promote it."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from starlette.responses import HTMLResponse, RedirectResponse

from catalog import service as catalog
from catalog.pages import entity_url
from catalog.refs import EntityRef
from plugins.registry import actions, service
from plugins.registry.resources import version_from_form
from portal import Identity, PavedError, requires
from portal.auth.sessions import safe_next
from portal.db import SessionDep
from portal.settings import Settings
from portal.shell import Shell

router = APIRouter(include_in_schema=False)


def _shell(request: Request) -> Shell:
    shell: Shell = request.app.state.shell
    return shell


def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def _registered_name(session: SessionDep, kind: str, namespace: str, name: str) -> str:
    entity = catalog.get_entity(session, EntityRef(kind, namespace, name))
    return str(entity.body.get("spec", {}).get("registeredModel") or name)


@router.get("/registry/tabs/{kind}/{namespace}/{name}", dependencies=[requires(actions.MODEL_READ)])
def model_tab(
    kind: str, namespace: str, name: str, request: Request, session: SessionDep
) -> HTMLResponse:
    """The Registry tab: every version with its lineage and approvals, and the model card."""
    registered = _registered_name(session, kind, namespace, name)
    context: dict[str, Any] = {"name": registered, "versions": [], "problem": None}
    try:
        context["versions"] = service.list_versions(session, registered, _settings(request))
    except PavedError as exc:
        context["problem"] = exc.detail
    production = service.PRODUCTION_ALIAS
    context["champion"] = next((v for v in context["versions"] if production in v.aliases), None)
    context["entity"] = service.model_entity(session, registered)
    context["entity_url"] = entity_url
    return _shell(request).render(request, "registry/tab.html", context)


@router.post("/registry/approvals")
def approve_from_form(
    request: Request,
    session: SessionDep,
    model: Annotated[str, Form()],
    version: Annotated[str, Form()],
    user: Annotated[Identity, requires(actions.MODEL_APPROVE, resource=version_from_form)],
    decision: Annotated[str, Form()] = "approved",
    back: Annotated[str, Form()] = "/",
) -> RedirectResponse:
    service.decide_approval(
        session,
        model,
        version,
        decision="rejected" if decision == "rejected" else "approved",
        comment="",
        by=user,
        settings=_settings(request),
    )
    return RedirectResponse(safe_next(back), status_code=303)


@router.post(
    "/registry/aliases", dependencies=[requires(actions.MODEL_PROMOTE, resource=version_from_form)]
)
def promote_from_form(
    request: Request,
    session: SessionDep,
    model: Annotated[str, Form()],
    version: Annotated[str, Form()],
    alias: Annotated[str, Form()],
    back: Annotated[str, Form()] = "/",
) -> RedirectResponse:
    service.set_alias(session, model, alias, version, settings=_settings(request))
    return RedirectResponse(safe_next(back), status_code=303)

"""Registering an existing component: the form, a dry run showing what a location would
import (or why it cannot be read), and the registration itself."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Form, Query, Request
from sqlmodel import Session
from starlette.responses import HTMLResponse

from catalog import actions, service
from catalog.pages.links import Link, entity_url, mapping_of
from catalog.pages.rendering import render, settings_of, shell_of
from catalog.refs import ref_of
from portal import FieldProblem, Identity, InvalidInput, requires
from portal.db import SessionDep
from portal.settings import Settings

router = APIRouter()


@dataclass
class Preview:
    """What registering a location would import, or why it cannot be read."""

    type: str
    target: str
    registered: service.Registered | None = None
    entities: list[Link] = field(default_factory=list)
    in_catalog: set[str] = field(default_factory=set)
    field_problems: dict[str, list[FieldProblem]] = field(default_factory=dict)


def preview_location(
    session: Session, type_: str, target: str, *, by: str, settings: Settings
) -> Preview:
    """A dry run of registering ``target``; a target that cannot be read becomes field
    problems to show beside the form's fields instead of an error page."""
    preview = Preview(type_, target)
    try:
        registered = service.add_location(
            session, type_, target, by=by, settings=settings.catalog, dry_run=True
        )
    except InvalidInput as exc:
        for problem in exc.errors or [FieldProblem("target", exc.detail)]:
            name = problem.field if problem.field in ("type", "target") else "target"
            preview.field_problems.setdefault(name, []).append(problem)
        return preview
    preview.registered = registered
    preview.entities = [_entity_link(entity) for entity in registered.entities]
    found = service.entities_by_refs(session, [link.ref for link in preview.entities])
    preview.in_catalog = {row.ref for row in found if row is not None}
    return preview


def _entity_link(entity: Mapping[str, Any]) -> Link:
    ref = ref_of(entity)
    metadata = mapping_of(entity.get("metadata"))
    return Link(
        str(ref), ref.name, entity_url(ref), kind=ref.kind, title=metadata.get("title") or None
    )


def _register_context(request: Request, session: Session) -> dict[str, Any]:
    catalog_settings = settings_of(request).catalog
    return {
        "locations": service.list_locations(session),
        "file_roots": [str(root) for root in catalog_settings.file_roots],
        "url_hosts": catalog_settings.url_hosts,
    }


@router.get("/register", dependencies=[requires(actions.LOCATION_READ)])
def register_page(request: Request, session: SessionDep) -> HTMLResponse:
    """The form to register an existing component's catalog file, and the locations so far."""
    context = {**_register_context(request, session), "preview": Preview("file", "")}
    return shell_of(request).render(request, "catalog/register.html", context)


@router.get("/register/preview")
def register_preview(
    request: Request,
    session: SessionDep,
    identity: Annotated[Identity, requires(actions.LOCATION_CREATE)],
    type: Literal["file", "url"] = "file",
    target: Annotated[str, Query(max_length=2000)] = "",
) -> HTMLResponse:
    """A dry run: what the location would import, with its problems. A GET, as it changes
    nothing (so nothing is written, and nothing is audited but a denial)."""
    preview = preview_location(
        session, type, target, by=identity.ref, settings=settings_of(request)
    )
    context = {**_register_context(request, session), "preview": preview}
    return render(request, "catalog/register.html", context, fragment="catalog/_register_form.html")


@router.post("/register", status_code=201)
def register_location(
    request: Request,
    session: SessionDep,
    identity: Annotated[Identity, requires(actions.LOCATION_CREATE)],
    type: Annotated[Literal["file", "url"], Form()],
    target: Annotated[str, Form(min_length=1, max_length=2000)],
) -> HTMLResponse:
    """Register the location and import its entities now; shows what was added."""
    registered = service.add_location(
        session, type, target, by=identity.ref, settings=settings_of(request).catalog
    )
    context = {
        "registered": registered,
        "entities": [_entity_link(entity) for entity in registered.entities],
    }
    return shell_of(request).render(request, "catalog/registered.html", context, status_code=201)

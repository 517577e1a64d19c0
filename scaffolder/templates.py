"""Software templates: catalog entities of kind Template, and the forms they ask to fill."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlmodel import Session

from catalog import service as catalog
from catalog.models import CatalogEntity
from catalog.refs import EntityRef
from portal.errors import InvalidInput

TEMPLATE_KIND = "template"
DEFAULT_STEP_TITLE = "Please enter the following information"


def get_template_entity(session: Session, ref: EntityRef) -> CatalogEntity:
    """The catalog's row of the Template ``ref`` names (with where it was read from)."""
    if ref.kind.lower() != TEMPLATE_KIND:
        raise InvalidInput.for_field("kind", f"{ref.kind} is not a kind of template", "Template")
    return catalog.get_entity(session, ref)


def get_template(session: Session, ref: EntityRef) -> dict[str, Any]:
    """The Template entity ``ref`` names, as the catalog holds it."""
    return dict(get_template_entity(session, ref).body)


def title_of(entity: Mapping[str, Any]) -> str:
    """What an entity is called where it is shown: its metadata's title, else its name."""
    metadata = entity.get("metadata") or {}
    return str(metadata.get("title") or metadata.get("name") or "")


def build_parameter_schema(session: Session, ref: EntityRef) -> dict[str, Any]:
    """The form a template asks to fill, one step per JSON schema in ``spec.parameters``
    (one object or a list of them), as Backstage's ``parameter-schema`` gives it."""
    template = get_template(session, ref)
    metadata = template.get("metadata") or {}
    parameters = (template.get("spec") or {}).get("parameters") or []
    steps = parameters if isinstance(parameters, list) else [parameters]
    found: dict[str, Any] = {"title": title_of(template)}
    if metadata.get("description"):
        found["description"] = metadata["description"]
    found["steps"] = [_describe_step(schema) for schema in steps if isinstance(schema, dict)]
    return found


def _describe_step(schema: dict[str, Any]) -> dict[str, Any]:
    step: dict[str, Any] = {"title": schema.get("title") or DEFAULT_STEP_TITLE}
    if schema.get("description"):
        step["description"] = schema["description"]
    step["schema"] = schema
    return step

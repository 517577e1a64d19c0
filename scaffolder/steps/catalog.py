"""The catalog's actions: ``catalog:write`` (a catalog-info.yaml in the workspace) and
``catalog:register`` (a location registered as the person who started the run)."""

from __future__ import annotations

from typing import Any

import yaml
from sqlmodel import Session

from catalog import service as catalog
from catalog.actions import LOCATION_CREATE
from catalog.refs import ref_of
from portal.errors import Conflict, InvalidInput
from scaffolder.steps import StepAction, StepContext

ENTITY_REF_OUTPUT = {"type": "string", "title": "The ref of the entity registered"}


def _write(context: StepContext, given: dict[str, Any]) -> dict[str, Any]:
    relative = given.get("filePath") or "catalog-info.yaml"
    path = context.path(relative, field="input.filePath")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(given["entity"], sort_keys=False, allow_unicode=True))
    context.log(f"wrote {relative}")
    return {}


def _register(context: StepContext, given: dict[str, Any]) -> dict[str, Any]:
    settings, act = context.acting("catalog:register")
    if given.get("catalogInfoUrl"):
        url = str(given["catalogInfoUrl"])
    elif given.get("repoContentsUrl"):
        path = str(given.get("catalogInfoPath") or "/catalog-info.yaml")
        url = str(given["repoContentsUrl"]).rstrip("/") + "/" + path.lstrip("/")
    else:
        raise InvalidInput.for_field(
            "input", "missing", "catalogInfoUrl, or repoContentsUrl and catalogInfoPath"
        )
    type_ = "url" if url.startswith(("http://", "https://")) else "file"
    target = url.removeprefix("file://")
    by = context.user_ref or "scaffolder"

    def register(session: Session) -> catalog.Registered:
        return catalog.add_location(session, type_, target, by=by, settings=settings.catalog)

    try:
        registered = act(LOCATION_CREATE, None, register)
    except (InvalidInput, Conflict) as exc:
        if not given.get("optional"):
            raise InvalidInput.for_field(
                "input.catalogInfoUrl", exc.detail, "a location to register"
            ) from None
        context.log(f"not registered (optional): {exc.detail}")
        return {"catalogInfoUrl": url}
    entities = registered.entities
    if not entities:
        problems = "; ".join(p["message"] for p in registered.problems) or "it holds no entity"
        raise InvalidInput.for_field("input.catalogInfoUrl", problems, "a file of entities")
    chosen = _choose_main_entity(entities)
    context.log(f"registered {url}: {len(entities)} entities, {chosen}")
    return {"entityRef": chosen, "catalogInfoUrl": url}


def _choose_main_entity(entities: list[dict[str, Any]]) -> str:
    """As Backstage picks it: the first Component, else the first entity that is not a
    generated Location."""
    refs = [(entity.get("kind"), str(ref_of(entity))) for entity in entities]
    for kind, ref in refs:
        if kind == "Component":
            return ref
    for kind, ref in refs:
        if kind != "Location":
            return ref
    return refs[0][1]


CATALOG_WRITE = StepAction(
    id="catalog:write",
    description="Writes the catalog-info.yaml for your template",
    run=_write,
    input_schema={
        "type": "object",
        "required": ["entity"],
        "properties": {
            "filePath": {
                "type": "string",
                "title": "Catalog file path",
                "description": "Where to write it, in the workspace (default catalog-info.yaml)",
            },
            "entity": {"type": "object", "title": "The entity to write"},
        },
    },
    examples=(
        {
            "description": "Write a catalog-info.yaml with a Component",
            "example": yaml.safe_dump(
                {
                    "steps": [
                        {
                            "id": "write",
                            "action": "catalog:write",
                            "input": {
                                "entity": {
                                    "apiVersion": "backstage.io/v1alpha1",
                                    "kind": "Component",
                                    "metadata": {"name": "${{ parameters.name }}"},
                                    "spec": {
                                        "type": "service",
                                        "owner": "${{ parameters.owner }}",
                                        "lifecycle": "experimental",
                                    },
                                }
                            },
                        }
                    ]
                },
                sort_keys=False,
            ),
        },
    ),
)

CATALOG_REGISTER = StepAction(
    id="catalog:register",
    description="Registers entities from a catalog descriptor file in the workspace into the "
    "software catalog",
    run=_register,
    input_schema={
        "type": "object",
        "properties": {
            "catalogInfoUrl": {
                "type": "string",
                "title": "Catalog Info URL",
                "description": "The URL (or, for a repository Paved publishes, the path) of "
                "the catalog-info.yaml to register",
            },
            "repoContentsUrl": {
                "type": "string",
                "title": "Repository Contents URL",
                "description": "Where the repository's files are (publish:git's repoContentsUrl)",
            },
            "catalogInfoPath": {
                "type": "string",
                "title": "Fetch URL",
                "description": "The path of the catalog-info.yaml in the repository",
            },
            "optional": {
                "type": "boolean",
                "title": "Optional",
                "description": "A location that cannot be registered is logged, not an error",
            },
        },
        "anyOf": [{"required": ["catalogInfoUrl"]}, {"required": ["repoContentsUrl"]}],
    },
    output_schema={
        "type": "object",
        "properties": {
            "entityRef": ENTITY_REF_OUTPUT,
            "catalogInfoUrl": {"type": "string", "title": "The location registered"},
        },
    },
    supports_dry_run=False,
)

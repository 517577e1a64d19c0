"""An entity's page: the overview with its relations drawn, its YAML, its processing
errors, and the tabs plugins add; an htmx request gets only the chosen tab."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Annotated, Any
from urllib.parse import quote, urlsplit

import yaml
from fastapi import APIRouter, Query, Request
from sqlmodel import Session
from starlette.responses import HTMLResponse, RedirectResponse

from catalog import actions, graph, service
from catalog.models import CatalogEntity, CatalogLocation
from catalog.pages.links import Link, entity_url, kind_label, mapping_of
from catalog.pages.rendering import render, settings_of, shell_of
from catalog.refs import EntityRef, parse_ref, ref_of
from catalog.relations import OWNED_BY, PART_OF, SPEC_REF_FIELDS
from portal import NotFound, requires
from portal.db import SessionDep
from portal.shell import EntityTab

router = APIRouter()

# Spec fields the overview shows on their own (the rest of a spec's plain values follow).
OVERVIEW_SPEC_FIELDS = ("type", "lifecycle", "owner", "system")
BUILT_IN_TABS = (("overview", "Overview"), ("yaml", "YAML"))
SAFE_LINK_SCHEMES = ("http", "https", "mailto")


@dataclass(frozen=True)
class RelationGroup:
    type: str
    targets: list[Link]


@dataclass
class EntityView:
    """Everything an entity's page shows, shaped for the template."""

    entity: CatalogEntity
    ref: EntityRef
    kind: str
    name: str
    title: str
    description: str
    type: str
    lifecycle: str
    owner: Link | None
    system: Link | None
    spec_facts: list[tuple[str, str]]
    tags: list[str]
    labels: list[tuple[str, str]]
    annotations: list[tuple[str, str]]
    links: list[dict[str, Any]]
    relations: list[RelationGroup]
    graph: Any  # markupsafe.Markup: the SVG
    yaml: str
    errors: list[dict[str, Any]]
    tabs: list[dict[str, Any]]
    location: CatalogLocation | None  # the registered location it came from


def entity_view(session: Session, ref: EntityRef, plugin_tabs: Sequence[EntityTab]) -> EntityView:
    """Load the entity ``ref`` names (NotFound if none) with what its page shows."""
    entity = service.get_entity(session, ref)
    body = entity.body
    own_ref = ref_of(body)
    metadata = mapping_of(body.get("metadata"))
    spec = mapping_of(body.get("spec"))
    relations = service.relations_by_source(session, [entity.ref]).get(entity.ref, [])
    targets = _related(session, [relation["targetRef"] for relation in relations])
    groups: dict[str, list[Link]] = {}
    types_by_target: dict[str, list[str]] = {}
    for relation in relations:
        link = targets[relation["targetRef"].lower()]
        groups.setdefault(relation["type"], []).append(link)
        types_by_target.setdefault(link.ref.lower(), []).append(relation["type"])
    edges = [
        graph.Edge(_node(targets[key]), tuple(types)) for key, types in types_by_target.items()
    ]
    centre = graph.Node(
        str(own_ref), own_ref.kind, own_ref.name, metadata.get("title"), entity_url(own_ref)
    )
    return EntityView(
        entity=entity,
        ref=own_ref,
        kind=own_ref.kind,
        name=own_ref.name,
        title=str(metadata.get("title") or own_ref.name),
        description=str(metadata.get("description") or ""),
        type=str(spec.get("type") or ""),
        lifecycle=str(spec.get("lifecycle") or ""),
        owner=_related_link(targets, relations, OWNED_BY, None),
        system=_related_link(targets, relations, PART_OF, "system"),
        spec_facts=_spec_facts(own_ref.kind, spec),
        tags=[str(tag) for tag in metadata.get("tags") or []],
        labels=sorted((str(k), str(v)) for k, v in mapping_of(metadata.get("labels")).items()),
        annotations=sorted(
            (str(k), str(v)) for k, v in mapping_of(metadata.get("annotations")).items()
        ),
        links=[_link_of(link) for link in metadata.get("links") or [] if isinstance(link, Mapping)],
        relations=[RelationGroup(type_, groups[type_]) for type_ in sorted(groups)],
        graph=graph.relations_svg(centre, edges),
        yaml=yaml.safe_dump(body, sort_keys=False, allow_unicode=True, width=100),
        errors=_processing_errors(entity),
        tabs=[
            {
                "id": tab.id,
                "label": tab.label,
                "url": tab.url(kind=own_ref.kind, namespace=own_ref.namespace, name=own_ref.name),
            }
            for tab in plugin_tabs
        ],
        location=(
            service.get_location(session, entity.location_id)
            if entity.location_id is not None
            else None
        ),
    )


def _related(session: Session, refs: Sequence[str]) -> dict[str, Link]:
    """A link for each ref (keyed lower-cased), to its page if the catalog holds it."""
    unique = list(dict.fromkeys(refs))
    found = service.entities_by_refs(session, unique) if unique else []
    links = {}
    for ref_text, row in zip(unique, found, strict=True):
        ref = parse_ref(ref_text)
        if row is None:
            links[ref.key] = Link(str(ref), ref.name, None, kind=kind_label(ref.kind))
            continue
        metadata = mapping_of(row.body.get("metadata"))
        links[ref.key] = Link(
            str(ref),
            ref.name,
            entity_url(ref),
            kind=str(row.body.get("kind") or kind_label(ref.kind)),
            title=metadata.get("title") or None,
        )
    return links


def _node(link: Link) -> graph.Node:
    return graph.Node(link.ref, link.kind, link.label, link.title, link.url)


def _related_link(
    targets: Mapping[str, Link],
    relations: Sequence[Mapping[str, Any]],
    type_: str,
    kind: str | None,
) -> Link | None:
    for relation in relations:
        target = str(relation["targetRef"])
        if relation["type"] == type_ and (kind is None or target.startswith(f"{kind}:")):
            return targets[target.lower()]
    return None


def _spec_facts(kind: str, spec: Mapping[str, Any]) -> list[tuple[str, str]]:
    """The spec's plain values the overview does not show elsewhere (a Model's framework, a
    person's e-mail), as ``(field, value)``."""
    ref_fields = {ref_field.name for ref_field in SPEC_REF_FIELDS.get(kind.lower(), ())}
    facts = [
        (key, str(value))
        for key, value in spec.items()
        if key not in OVERVIEW_SPEC_FIELDS
        and key not in ref_fields
        and isinstance(value, str | int | float | bool)
    ]
    profile = spec.get("profile")
    if isinstance(profile, Mapping):
        facts += [
            (f"profile.{key}", str(value))
            for key, value in profile.items()
            if isinstance(value, str | int | float | bool)
        ]
    return facts


def _link_of(link: Mapping[str, Any]) -> dict[str, Any]:
    """A ``metadata.links`` entry; only web and mail addresses become links (a catalog
    file could hold ``javascript:`` ones)."""
    url = str(link.get("url") or "")
    scheme = urlsplit(url).scheme.lower()
    return {
        "url": url,
        "title": str(link.get("title") or url),
        "is_safe": scheme in SAFE_LINK_SCHEMES,
    }


def _processing_errors(entity: CatalogEntity) -> list[dict[str, Any]]:
    """The problems found reading the entity: ``errors`` as stored, else ``status.items``."""
    if entity.errors:
        return list(entity.errors)
    status = entity.body.get("status")
    items = status.get("items") if isinstance(status, Mapping) else None
    return [
        {"message": str(item.get("message", "")), "field": None, "source": None}
        for item in items or []
        if isinstance(item, Mapping) and item.get("level", "error") == "error"
    ]


@router.get("/{kind}/{namespace}/{name}", dependencies=[requires(actions.ENTITY_READ)])
def entity_page(
    kind: str,
    namespace: str,
    name: str,
    request: Request,
    session: SessionDep,
    tab: Annotated[str, Query(max_length=100)] = "overview",
) -> HTMLResponse:
    """An entity: overview with its relations drawn, its YAML, and the plugins' tabs."""
    shell = shell_of(request)
    view = entity_view(session, EntityRef(kind, namespace, name), shell.tabs_for(kind))
    known = [tab_id for tab_id, _ in BUILT_IN_TABS] + [plugin_tab["id"] for plugin_tab in view.tabs]
    if tab not in known:
        raise NotFound(f"{view.ref} has no tab {tab!r}; it has {', '.join(known)}")
    context = {
        "view": view,
        "tab": tab,
        "built_in_tabs": BUILT_IN_TABS,
        "page_url": entity_url(view.ref),
    }
    return render(request, "catalog/entity.html", context, fragment="catalog/_entity_view.html")


@router.post("/{kind}/{namespace}/{name}/refresh", dependencies=[requires(actions.ENTITY_REFRESH)])
def refresh_from_page(
    kind: str, namespace: str, name: str, request: Request, session: SessionDep
) -> RedirectResponse:
    """Read the entity's location again now, then show the entity as it is."""
    ref = EntityRef(kind, namespace, name)
    service.refresh_entity(session, str(ref), settings_of(request).catalog)
    return RedirectResponse(f"{entity_url(ref)}?refreshed=1", status_code=303)


@router.post(
    "/{kind}/{namespace}/{name}/unregister", dependencies=[requires(actions.LOCATION_DELETE)]
)
def unregister_from_page(
    kind: str, namespace: str, name: str, session: SessionDep
) -> RedirectResponse:
    """Remove the location the entity came from, and every entity it brought (Backstage's
    "Unregister entity")."""
    location = service.location_of_entity(session, EntityRef(kind, namespace, name))
    service.delete_location(session, location.id)
    return RedirectResponse(f"/catalog?unregistered={quote(location.target)}", status_code=303)


@router.post("/{kind}/{namespace}/{name}/delete", dependencies=[requires(actions.ENTITY_DELETE)])
def delete_from_page(kind: str, namespace: str, name: str, session: SessionDep) -> RedirectResponse:
    """Delete one entity (an orphan, usually: its location would bring it back)."""
    entity = service.get_entity(session, EntityRef(kind, namespace, name))
    service.delete_entity(session, entity.uid)
    return RedirectResponse(f"/catalog?deleted={quote(entity.ref)}", status_code=303)

"""The catalog's pages: the entity table with filters and facet counts, entity pages with
their relations drawn, and registering an existing component.

Every page works without JavaScript (GET forms, links, POST forms); with htmx, filtering,
searching, sorting and paging swap only the results, and entity tabs swap only the tab.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal
from urllib.parse import quote, urlencode, urlsplit

import yaml
from fastapi import APIRouter, Depends, Form, Query, Request
from sqlmodel import Session
from starlette.responses import HTMLResponse

from catalog import actions, graph, queries, service
from catalog.models import CatalogEntity
from catalog.refs import EntityRef, parse_ref, ref_of
from catalog.relations import OWNED_BY, PART_OF, SPEC_REF_FIELDS
from portal import FieldProblem, Identity, InvalidInput, NotFound, requires
from portal.db import SessionDep
from portal.settings import Settings
from portal.shell import EntityTab, Shell

router = APIRouter(prefix="/catalog", include_in_schema=False)

PAGE_SIZE = 25
RESULTS_FRAGMENT = "catalog/_results.html"
# Entity kinds whose name is not the lower-cased kind with a capital first letter.
KIND_LABELS = {"api": "API", "airesource": "AiResource"}
# Spec fields the overview shows on their own (the rest of a spec's plain values follow).
OVERVIEW_SPEC_FIELDS = ("type", "lifecycle", "owner", "system")
BUILT_IN_TABS = (("overview", "Overview"), ("yaml", "YAML"))
SAFE_LINK_SCHEMES = ("http", "https", "mailto")


@dataclass(frozen=True)
class Facet:
    """A filter of the catalog page: its query parameter and the entity field it matches."""

    param: str
    label: str
    key: str  # a filter key of catalog.queries, lower-cased


FACETS = (
    Facet("kind", "Kind", "kind"),
    Facet("type", "Type", "spec.type"),
    Facet("owner", "Owner", "relations.ownedby"),
    Facet("lifecycle", "Lifecycle", "spec.lifecycle"),
    Facet("tag", "Tag", "metadata.tags"),
    Facet("namespace", "Namespace", "metadata.namespace"),
)
# Sortable columns and the field each sorts by.
SORTS = {
    "name": "metadata.name",
    "kind": "kind",
    "type": "spec.type",
    "owner": "spec.owner",
    "lifecycle": "spec.lifecycle",
}
SortParam = Literal["name", "kind", "type", "owner", "lifecycle"]


def _shell(request: Request) -> Shell:
    shell: Shell = request.app.state.shell
    return shell


def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def _is_htmx(request: Request) -> bool:
    """An htmx swap: not the history restore, which wants the whole page."""
    return (
        request.headers.get("HX-Request") == "true"
        and request.headers.get("HX-History-Restore-Request") != "true"
    )


def _render(
    request: Request,
    template: str,
    context: dict[str, Any],
    *,
    fragment: str,
    status_code: int = 200,
) -> HTMLResponse:
    """The page, or for an htmx swap only ``fragment`` (the shell would also hand the
    fragment to htmx's history restore, which replaces the whole page)."""
    is_htmx = _is_htmx(request)
    response = _shell(request).render(
        request,
        template,
        {**context, "is_htmx": is_htmx},
        fragment=fragment if is_htmx else None,
        status_code=status_code,
    )
    response.headers["Vary"] = "HX-Request"
    return response


def entity_url(ref: EntityRef | str) -> str:
    """The page of the entity ``ref`` names: ``/catalog/<kind>/<namespace>/<name>``."""
    parsed = parse_ref(ref) if isinstance(ref, str) else ref
    parts = (parsed.kind.lower(), parsed.namespace, parsed.name)
    return "/catalog/" + "/".join(quote(part, safe="") for part in parts)


def kind_label(kind: str) -> str:
    return KIND_LABELS.get(kind.lower(), kind[:1].upper() + kind[1:])


def short_ref(ref: str, *, default_kind: str = "group") -> str:
    """``group:default/fraud`` as people write it in the default namespace: ``fraud``."""
    kind, _, rest = ref.partition(":")
    namespace, _, name = rest.partition("/")
    shown = name if namespace == "default" else f"{namespace}/{name}"
    return shown if kind == default_kind else f"{kind}:{shown}"


# -- The catalog table --------------------------------------------------------------------


@dataclass(frozen=True)
class CatalogFilters:
    """What the catalog page shows: filters (lower-cased), search, sort and page."""

    chosen: Mapping[str, tuple[str, ...]]  # Facet.param -> values (ORed)
    q: str = ""
    sort: SortParam | None = None
    descending: bool = False
    offset: int = 0

    def to_query(self) -> queries.Query:
        conditions = tuple(
            queries.Condition(facet.key, self.chosen[facet.param])
            for facet in FACETS
            if self.chosen.get(facet.param)
        )
        order: tuple[queries.Order, ...] = (queries.Order("kind"), queries.Order("metadata.name"))
        if self.sort is not None:
            order = (queries.Order(SORTS[self.sort], not self.descending), *order)
        return queries.Query(
            filter=(conditions,) if conditions else (),
            order=order,
            full_text=self.q or None,
            limit=PAGE_SIZE,
            offset=self.offset,
        )

    def url(self, **changes: Any) -> str:
        """This view's address, with ``changes`` (``offset=25``, ``sort="name"``, ...)."""
        sort = changes.get("sort", self.sort)
        descending = changes.get("descending", self.descending)
        offset = changes.get("offset", self.offset)
        pairs: list[tuple[str, str]] = []
        if self.q:
            pairs.append(("q", self.q))
        for facet in FACETS:
            pairs.extend((facet.param, value) for value in self.chosen.get(facet.param, ()))
        if sort:
            pairs.append(("sort", sort))
            if descending:
                pairs.append(("dir", "desc"))
        if offset:
            pairs.append(("offset", str(offset)))
        return "/catalog" + (f"?{urlencode(pairs)}" if pairs else "")

    @property
    def is_filtered(self) -> bool:
        return bool(self.q or any(self.chosen.values()))


def _values(raw: Sequence[str]) -> tuple[str, ...]:
    """Lower-cased, stripped, without blanks (an "any" option sends one) and repeats."""
    return tuple(dict.fromkeys(value.strip().lower() for value in raw if value.strip()))


def _catalog_filters(
    q: Annotated[str, Query(max_length=200, description="Words to search for.")] = "",
    kind: Annotated[list[str], Query()] = [],  # noqa: B006 (FastAPI copies the default)
    type: Annotated[list[str], Query()] = [],  # noqa: B006
    owner: Annotated[list[str], Query()] = [],  # noqa: B006
    lifecycle: Annotated[list[str], Query()] = [],  # noqa: B006
    tag: Annotated[list[str], Query()] = [],  # noqa: B006
    namespace: Annotated[list[str], Query()] = [],  # noqa: B006
    sort: SortParam | None = None,
    dir: Literal["asc", "desc"] = "asc",
    offset: Annotated[int, Query(ge=0)] = 0,
) -> CatalogFilters:
    # An owner may be written as people do (``fraud``); filters compare whole refs.
    owners = tuple(
        dict.fromkeys(
            parse_ref(value, default_kind="group", field="owner").key for value in _values(owner)
        )
    )
    return CatalogFilters(
        chosen={
            "kind": _values(kind),
            "type": _values(type),
            "owner": owners,
            "lifecycle": _values(lifecycle),
            "tag": _values(tag),
            "namespace": _values(namespace),
        },
        q=q.strip(),
        sort=sort,
        descending=dir == "desc",
        offset=offset,
    )


FiltersDep = Annotated[CatalogFilters, Depends(_catalog_filters)]


@dataclass(frozen=True)
class Option:
    value: str
    label: str
    count: int
    selected: bool


@dataclass(frozen=True)
class FacetView:
    facet: Facet
    options: list[Option]


@dataclass(frozen=True)
class Link:
    """An entity as a link: ``url`` is None when the catalog does not hold it."""

    ref: str
    label: str
    url: str | None
    kind: str = ""
    title: str | None = None


@dataclass(frozen=True)
class Row:
    ref: str
    url: str
    name: str
    title: str | None
    kind: str
    type: str
    owner: Link | None
    lifecycle: str
    tags: list[str]
    description: str
    is_orphan: bool
    has_errors: bool


def _option_label(facet: Facet, value: str) -> str:
    if facet.param == "kind":
        return kind_label(value)
    if facet.param == "owner":
        return short_ref(value)
    return value


def _facet_views(session: Session, filters: CatalogFilters) -> list[FacetView]:
    counted = queries.facet_counts(session, filters.to_query(), [f.key for f in FACETS])
    views = []
    for facet in FACETS:
        chosen = filters.chosen.get(facet.param, ())
        counts = dict(counted[facet.key])
        # A chosen value nothing has any more still shows, so it can be unchosen.
        counts.update({value: 0 for value in chosen if value not in counts})
        options = [
            Option(value, _option_label(facet, value), count, value in chosen)
            for value, count in sorted(
                counts.items(), key=lambda item: _option_label(facet, item[0])
            )
        ]
        views.append(FacetView(facet, options))
    return views


def _owner_link(body: Mapping[str, Any], namespace: str) -> Link | None:
    spec = body.get("spec")
    owner = spec.get("owner") if isinstance(spec, Mapping) else None
    ref = _ref_or_none(owner, default_kind="Group", namespace=namespace)
    if ref is None:
        return None
    return Link(str(ref), short_ref(str(ref)), entity_url(ref), kind="Group")


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _ref_or_none(value: Any, *, default_kind: str | None, namespace: str) -> EntityRef | None:
    """The ref a spec field names, or None when it names none (validation reported it)."""
    if not isinstance(value, str | Mapping) or not value:
        return None
    try:
        return parse_ref(value, default_kind=default_kind, default_namespace=namespace)
    except InvalidInput:
        return None


def _row(entity: CatalogEntity) -> Row:
    body = entity.body
    metadata = _mapping(body.get("metadata"))
    spec = _mapping(body.get("spec"))
    namespace = metadata.get("namespace") or "default"
    return Row(
        ref=str(ref_of(body)),
        url=entity_url(ref_of(body)),
        name=str(metadata.get("name", "")),
        title=metadata.get("title"),
        kind=str(body.get("kind", "")),
        type=str(spec.get("type") or ""),
        owner=_owner_link(body, namespace),
        lifecycle=str(spec.get("lifecycle") or ""),
        tags=[str(tag) for tag in metadata.get("tags") or []],
        description=str(metadata.get("description") or ""),
        is_orphan=entity.is_orphan,
        has_errors=bool(entity.errors),
    )


def _sort_links(filters: CatalogFilters) -> dict[str, dict[str, str]]:
    """Per sortable column: the link that sorts by it (or reverses it) and its aria-sort."""
    links = {}
    for column in SORTS:
        is_current = filters.sort == column
        descending = is_current and not filters.descending
        links[column] = {
            "url": filters.url(sort=column, descending=descending, offset=0),
            "aria_sort": (
                ("descending" if filters.descending else "ascending") if is_current else "none"
            ),
        }
    return links


@router.get("", dependencies=[requires(actions.ENTITY_READ)])
def catalog_page(request: Request, session: SessionDep, filters: FiltersDep) -> HTMLResponse:
    """Every entity, filtered, searched, sorted and paged; htmx gets only the results."""
    page = queries.run(session, filters.to_query())
    shown_to = filters.offset + len(page.rows)
    context = {
        "filters": filters,
        "facets": _facet_views(session, filters),
        "rows": [_row(entity) for entity in page.rows],
        "total": page.total,
        "shown_from": filters.offset + 1 if page.rows else 0,
        "shown_to": shown_to,
        "previous_url": filters.url(offset=max(filters.offset - PAGE_SIZE, 0))
        if filters.offset
        else None,
        "next_url": filters.url(offset=shown_to) if shown_to < page.total else None,
        "sort_links": _sort_links(filters),
    }
    response = _render(request, "catalog/list.html", context, fragment=RESULTS_FRAGMENT)
    if _is_htmx(request):
        # The address bar shows the view without the form's empty fields.
        response.headers["HX-Push-Url"] = filters.url()
    return response


# -- Registering an existing component ----------------------------------------------------


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
    metadata = _mapping(entity.get("metadata"))
    return Link(
        str(ref), ref.name, entity_url(ref), kind=ref.kind, title=metadata.get("title") or None
    )


def _register_context(request: Request, session: Session) -> dict[str, Any]:
    catalog_settings = _settings(request).catalog
    return {
        "locations": service.list_locations(session),
        "file_roots": [str(root) for root in catalog_settings.file_roots],
        "url_hosts": catalog_settings.url_hosts,
    }


@router.get("/register", dependencies=[requires(actions.LOCATION_READ)])
def register_page(request: Request, session: SessionDep) -> HTMLResponse:
    """The form to register an existing component's catalog file, and the locations so far."""
    context = {**_register_context(request, session), "preview": Preview("file", "")}
    return _shell(request).render(request, "catalog/register.html", context)


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
    preview = preview_location(session, type, target, by=identity.ref, settings=_settings(request))
    context = {**_register_context(request, session), "preview": preview}
    return _render(
        request, "catalog/register.html", context, fragment="catalog/_register_form.html"
    )


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
        session, type, target, by=identity.ref, settings=_settings(request).catalog
    )
    context = {
        "registered": registered,
        "entities": [_entity_link(entity) for entity in registered.entities],
    }
    return _shell(request).render(request, "catalog/registered.html", context, status_code=201)


# -- An entity's page ---------------------------------------------------------------------


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


def entity_view(session: Session, ref: EntityRef, plugin_tabs: Sequence[EntityTab]) -> EntityView:
    """Load the entity ``ref`` names (NotFound if none) with what its page shows."""
    entity = service.get_entity(session, ref)
    body = entity.body
    own_ref = ref_of(body)
    metadata = _mapping(body.get("metadata"))
    spec = _mapping(body.get("spec"))
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
        labels=sorted((str(k), str(v)) for k, v in _mapping(metadata.get("labels")).items()),
        annotations=sorted(
            (str(k), str(v)) for k, v in _mapping(metadata.get("annotations")).items()
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
        metadata = _mapping(row.body.get("metadata"))
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
    shell = _shell(request)
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
    return _render(request, "catalog/entity.html", context, fragment="catalog/_entity_view.html")

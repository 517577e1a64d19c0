"""The catalog table at ``/catalog``: every entity, filtered by facets with their counts,
searched, sorted and paged; an htmx request gets only the results."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, Literal
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Query, Request
from sqlmodel import Session
from starlette.responses import HTMLResponse

from catalog import actions, queries
from catalog.models import CatalogEntity
from catalog.pages.links import Link, entity_url, kind_label, mapping_of, short_ref
from catalog.pages.rendering import is_htmx, render
from catalog.refs import EntityRef, parse_ref, ref_of
from portal import InvalidInput, requires
from portal.db import SessionDep

router = APIRouter()

PAGE_SIZE = 25
RESULTS_FRAGMENT = "catalog/_results.html"


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
    metadata = mapping_of(body.get("metadata"))
    spec = mapping_of(body.get("spec"))
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
    response = render(request, "catalog/list.html", context, fragment=RESULTS_FRAGMENT)
    if is_htmx(request):
        # The address bar shows the view without the form's empty fields.
        response.headers["HX-Push-Url"] = filters.url()
    return response

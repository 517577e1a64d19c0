"""The catalog's pages on Paved's demo catalog: the table with filters, facet counts,
search, sorting and paging; entity pages with their relations drawn; registering."""

from __future__ import annotations

import itertools
import re
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine
from sqlmodel import Session

from catalog import graph, service
from catalog.readers import DEMO_DIR
from portal import EntityTab
from portal.app import create_app
from portal.plugins import Plugins
from portal.settings import Settings

from conftest import BOTH_BACKENDS, ClientFactory
from factories import throwaway_plugin

HTML = {"Accept": "text/html"}
EN_DASH = "\N{EN DASH}"  # the summary writes ranges with it ("1 to 25")
HTMX = {"Accept": "*/*", "HX-Request": "true"}
ROW_NAME = re.compile(r'<th scope="row">\s*<a href="([^"]+)"[^>]*>([^<]+)</a>')
CSRF_INPUT = re.compile(r'name="csrf_token" value="([^"]+)"')


def demo_entities() -> list[dict[str, Any]]:
    """The demo catalog as its files write it: the numbers the pages must show."""
    documents: list[dict[str, Any]] = []
    for path in sorted(DEMO_DIR.glob("*.yaml")):
        documents += [doc for doc in yaml.safe_load_all(path.read_text()) if doc]
    return documents


def kinds_in_demo() -> Counter[str]:
    return Counter(doc["kind"] for doc in demo_entities())


def names_on(page: str) -> list[str]:
    return [name for _, name in ROW_NAME.findall(page)]


def option_counts(page: str, param: str) -> dict[str, int]:
    """``{value: count}`` of the options of the filter ``param`` (e.g. ``kind``)."""
    select = re.search(rf'<select id="facet-{param}"[^>]*>(.*?)</select>', page, re.S)
    assert select is not None, f"no {param} filter"
    return {
        value: int(count)
        for value, count in re.findall(
            r'<option value="([^"]+)"[^>]*>[^<]*\((\d+)\)</option>', select.group(1)
        )
    }


def write_catalog_file(folder: Path, name: str, *documents: dict[str, Any]) -> Path:
    path = folder / name
    path.write_text(yaml.safe_dump_all(documents, sort_keys=False))
    return path


def component(name: str, **metadata: Any) -> dict[str, Any]:
    return {
        "apiVersion": "backstage.io/v1alpha1",
        "kind": "Component",
        "metadata": {"name": name, **metadata},
        "spec": {"type": "service", "lifecycle": "experimental", "owner": "fraud"},
    }


# -- The catalog table --------------------------------------------------------------------


def test_the_catalog_is_in_the_navigation(catalog: TestClient) -> None:
    home = catalog.get("/", headers=HTML)
    assert '<a href="/catalog">Catalog</a>' in home.text
    page = catalog.get("/catalog", headers=HTML)
    assert '<a href="/catalog" aria-current="page">Catalog</a>' in page.text


def test_the_table_lists_entities_by_kind_then_name_with_links_to_them_and_their_owners(
    catalog: TestClient,
) -> None:
    page = catalog.get("/catalog", headers=HTML)
    assert page.status_code == 200
    total = catalog.get("/api/catalog/entities/by-query", params={"limit": 0}).json()["totalItems"]
    assert f"1{EN_DASH}25 of {total} entities" in page.text
    rows = ROW_NAME.findall(page.text)
    assert len(rows) == 25
    # All kinds, ordered by kind then name: the demo's APIs come first.
    assert rows[0] == ("/catalog/api/default/checkout-api", "checkout-api")
    assert [name for _, name in rows[:8]] == sorted(name for _, name in rows[:8])
    assert (
        '<a href="/catalog/group/default/checkout" title="group:default/checkout">checkout</a>'
        in (page.text)
    )
    for header in ("Name", "Kind", "Type", "Owner", "Lifecycle", "Tags", "Description"):
        assert re.search(rf'<th scope="col"[^>]*>\s*(<a [^>]*>)?{header}', page.text), header
    for param, label in (("kind", "Kind"), ("type", "Type"), ("owner", "Owner")):
        assert f'<label for="facet-{param}">{label}' in page.text
    assert '<label for="catalog-q">Search</label>' in page.text


@BOTH_BACKENDS
def test_facet_counts_are_the_demo_catalogs_numbers(backend: str, catalog: TestClient) -> None:
    page = catalog.get("/catalog", headers=HTML).text
    kinds = option_counts(page, "kind")
    for kind, count in kinds_in_demo().items():
        if kind != "Location":  # the catalog adds one standing for each registered location
            assert kinds[kind.lower()] == count, kind
    owners = Counter(
        f"group:default/{doc['spec']['owner']}"
        for doc in demo_entities()
        if "owner" in doc.get("spec", {})
    )
    assert option_counts(page, "owner") == dict(owners)
    lifecycles = Counter(
        doc["spec"]["lifecycle"] for doc in demo_entities() if "lifecycle" in doc.get("spec", {})
    )
    assert option_counts(page, "lifecycle") == dict(lifecycles)
    tags = Counter(tag for doc in demo_entities() for tag in doc["metadata"].get("tags", []))
    assert option_counts(page, "tag") == dict(tags)
    assert option_counts(page, "namespace") == {"default": sum(kinds.values())}


@BOTH_BACKENDS
def test_a_filter_narrows_the_table_and_the_other_facets_count_within_it(
    backend: str,
    catalog: TestClient,
) -> None:
    page = catalog.get("/catalog", params={"kind": "Model"}, headers=HTML).text
    models = [doc for doc in demo_entities() if doc["kind"] == "Model"]
    assert sorted(names_on(page)) == sorted(doc["metadata"]["name"] for doc in models)
    assert f"1{EN_DASH}{len(models)} of {len(models)} entities" in page
    assert '<option value="model" selected>Model (8)</option>' in page
    # The kind facet leaves out its own filter: every other kind still shows its count.
    assert option_counts(page, "kind")["component"] == kinds_in_demo()["Component"]
    # The other facets count models only.
    owners = Counter(f"group:default/{doc['spec']['owner']}" for doc in models)
    assert option_counts(page, "owner") == dict(owners)
    types = Counter(doc["spec"]["type"] for doc in models)
    assert option_counts(page, "type") == dict(types)

    # Two filters are ANDed; a person writes an owner as in a spec.
    fraud_models = catalog.get(
        "/catalog", params={"kind": "model", "owner": "fraud"}, headers=HTML
    ).text
    expected = sorted(doc["metadata"]["name"] for doc in models if doc["spec"]["owner"] == "fraud")
    assert sorted(names_on(fraud_models)) == expected
    assert '<option value="group:default/fraud" selected>fraud' in fraud_models

    nothing = catalog.get("/catalog", params={"kind": "model", "tag": "react"}, headers=HTML)
    assert names_on(nothing.text) == []
    assert "No entities match" in nothing.text
    # A chosen value nothing has any more is still offered, so it can be unchosen.
    assert '<option value="react" selected>react (0)</option>' in nothing.text


@BOTH_BACKENDS
def test_full_text_search_matches_every_word_and_keeps_the_filters(
    backend: str, catalog: TestClient
) -> None:
    found = catalog.get("/catalog", params={"q": "FRAUD scorer"}, headers=HTML).text
    assert "fraud-scorer" in names_on(found)
    assert "checkout-service" not in names_on(found)
    assert 'value="FRAUD scorer"' in found
    narrowed = catalog.get("/catalog", params={"q": "fraud", "kind": "api"}, headers=HTML).text
    assert names_on(narrowed) == ["fraud-scoring-api"]
    assert option_counts(narrowed, "kind")["model"] >= 2  # counted within the search


@BOTH_BACKENDS
def test_columns_sort_both_ways_and_say_so(backend: str, catalog: TestClient) -> None:
    by_name = catalog.get("/catalog", params={"sort": "name"}, headers=HTML).text
    names = names_on(by_name)
    assert names == sorted(names, key=str.lower)
    assert re.search(
        r'<th scope="col" aria-sort="ascending">\s*<a href="/catalog\?sort=name&amp;dir=desc"',
        by_name,
    )
    assert '<input type="hidden" name="sort" value="name">' in by_name

    descending = catalog.get("/catalog", params={"sort": "name", "dir": "desc"}, headers=HTML).text
    assert names_on(descending)[0] > names_on(descending)[-1]
    assert 'aria-sort="descending"' in descending

    by_owner = catalog.get(
        "/catalog", params={"sort": "owner", "kind": "component"}, headers=HTML
    ).text
    owners = re.findall(r'<td><a href="/catalog/group/default/([^"]+)"', by_owner)
    assert owners == sorted(owners)
    assert catalog.get("/catalog", params={"sort": "uid"}, headers=HTML).status_code == 422


def test_pages_follow_each_other_with_the_filters_kept(catalog: TestClient) -> None:
    first = catalog.get("/catalog", params={"sort": "name"}, headers=HTML).text
    assert 'href="/catalog?sort=name&amp;offset=25"' in first
    assert "Previous page" not in first
    second = catalog.get("/catalog", params={"sort": "name", "offset": 25}, headers=HTML).text
    assert f"26{EN_DASH}50 of" in second
    assert 'href="/catalog?sort=name" hx-get="/catalog?sort=name"' in second  # previous
    assert not set(names_on(first)) & set(names_on(second))


def test_htmx_gets_only_the_results_with_the_counts_and_a_clean_address(
    catalog: TestClient,
) -> None:
    swap = catalog.get("/catalog", params={"kind": "model", "q": "", "type": ""}, headers=HTMX)
    assert swap.status_code == 200
    assert "<html" not in swap.text
    assert 'id="catalog-filters"' not in swap.text  # the form stays, with what is typed
    assert '<select id="facet-owner" hx-swap-oob="innerHTML">' in swap.text
    assert '<p id="catalog-summary" hx-swap-oob="innerHTML">' in swap.text
    assert len(names_on(swap.text)) == 8
    assert swap.headers["HX-Push-Url"] == "/catalog?kind=model"
    assert "HX-Request" in swap.headers["Vary"]
    # Going back to a page htmx no longer holds asks for the whole page.
    restore = catalog.get(
        "/catalog", params={"kind": "model"}, headers={**HTMX, "HX-History-Restore-Request": "true"}
    )
    assert "<html" in restore.text
    assert "hx-swap-oob" not in restore.text


def test_roles_without_catalog_reads_do_not_see_it(
    catalog: TestClient, client_as: ClientFactory
) -> None:
    auditor = client_as("auditor")
    assert auditor.get("/catalog", headers=HTML).status_code == 403
    assert auditor.get("/catalog/component/default/checkout-service").status_code == 403
    scientist = client_as("data_scientist")
    assert scientist.get("/catalog", headers=HTML).status_code == 200


# -- Entity pages -------------------------------------------------------------------------


def test_an_entity_page_has_its_overview_links_and_relations(catalog: TestClient) -> None:
    page = catalog.get("/catalog/component/default/checkout-service", headers=HTML)
    assert page.status_code == 200
    text = page.text
    assert "<h1>Checkout Service</h1>" in text
    assert "<title>Checkout Service (Component) · Paved</title>" in text
    assert "Turns a cart into an order" in text
    assert '<dt>Owner</dt><dd><a href="/catalog/group/default/checkout"' in text
    assert '<dt>System</dt><dd><a href="/catalog/system/default/payments-core"' in text
    assert "<dt>Lifecycle</dt><dd>production</dd>" in text
    assert '<a href="/catalog?tag=payments" class="status">payments</a>' in text
    assert "<code>tier: critical</code>" in text
    assert '<a href="https://runbooks.northwind.example/checkout/checkout-service"' in text
    assert "<code>paved.dev/source-location</code>" in text
    # Relations grouped by type, each a link.
    assert re.search(
        r"<dt><code>providesApi</code></dt>\s*<dd>.*/catalog/api/default/checkout-api.*"
        r"/catalog/api/default/order-events-api",
        text,
    )
    assert '<a href="/catalog/component/default/checkout-service" hx-get' in text  # its tab
    assert "Processing errors" not in text
    assert "Orphan" not in text


def test_the_relations_graph_has_a_linked_node_for_every_related_entity(
    catalog: TestClient,
) -> None:
    page = catalog.get("/catalog/component/default/checkout-service", headers=HTML).text
    svg = re.search(r"<svg .*?</svg>", page, re.S)
    assert svg is not None
    root = ET.fromstring(svg.group(0))  # well-formed, so every name was escaped
    ns = {"svg": "http://www.w3.org/2000/svg"}
    linked = {a.get("data-ref"): a.get("href") for a in root.iterfind(".//svg:a", ns)}
    relations = catalog.get(
        "/api/catalog/entities/by-name/component/default/checkout-service"
    ).json()["relations"]
    assert set(linked) == {relation["targetRef"] for relation in relations}
    assert linked["group:default/checkout"] == "/catalog/group/default/checkout"
    labels = {text.text for text in root.iterfind(".//svg:g[@class='edge']/svg:text", ns)}
    assert {"ownedBy", "partOf", "providesApi", "consumesApi", "dependsOn"} <= labels
    centre = root.find(".//svg:g[@class='node centre']", ns)
    assert centre is not None
    assert centre.get("data-ref") == "component:default/checkout-service"
    assert root.find("svg:title", ns).text == "Relations of component:default/checkout-service"  # type: ignore[union-attr]


def test_a_team_with_many_relations_stays_readable(catalog: TestClient) -> None:
    page = catalog.get("/catalog/group/default/platform", headers=HTML).text
    svg = ET.fromstring(re.search(r"<svg .*?</svg>", page, re.S).group(0))  # type: ignore[union-attr]
    ns = {"svg": "http://www.w3.org/2000/svg"}
    boxes = [
        (float(rect.get("x", 0)), float(rect.get("y", 0)))
        for rect in svg.iterfind(".//svg:rect", ns)
    ]
    assert len(boxes) > 15
    assert len(boxes) == len(set(boxes))  # no two boxes on top of each other
    for x in {x for x, _ in boxes}:
        ys = sorted(y for bx, y in boxes if bx == x)
        assert all(b - a >= graph.NODE_HEIGHT for a, b in itertools.pairwise(ys))


def test_the_yaml_tab_shows_the_entity_as_stored(catalog: TestClient) -> None:
    page = catalog.get(
        "/catalog/component/default/checkout-service", params={"tab": "yaml"}, headers=HTML
    ).text
    yaml_text = re.search(r'<pre id="entity-yaml"[^>]*><code>(.*?)</code></pre>', page, re.S)
    assert yaml_text is not None
    shown = yaml.safe_load(yaml_text.group(1).replace("&#39;", "'").replace("&amp;", "&"))
    assert shown["kind"] == "Component"
    assert shown["metadata"]["name"] == "checkout-service"
    assert yaml_text.group(1).startswith("apiVersion: backstage.io/v1alpha1\nkind: Component\n")
    assert 'aria-current="page">YAML</a>' in page
    # htmx swaps only the tab.
    swap = catalog.get(
        "/catalog/component/default/checkout-service", params={"tab": "yaml"}, headers=HTMX
    ).text
    assert "<html" not in swap
    assert 'id="entity-yaml"' in swap


def test_a_missing_entity_or_tab_is_a_404_page(catalog: TestClient) -> None:
    missing = catalog.get("/catalog/component/default/no-such-thing", headers=HTML)
    assert missing.status_code == 404
    assert "<h1>Not found</h1>" in missing.text
    assert "there is no entity component:default/no-such-thing" in missing.text
    tab = catalog.get(
        "/catalog/component/default/checkout-service", params={"tab": "nope"}, headers=HTML
    )
    assert tab.status_code == 404
    assert "has no tab" in tab.text


def test_processing_errors_and_orphans_are_shown_prominently(
    client: TestClient, engine: Engine, settings: Settings, repos: Path
) -> None:
    path = write_catalog_file(
        repos,
        "catalog-info.yaml",
        component("twice", title="First"),
        component("twice", title="Second"),
        component("leaving"),
    )
    with Session(engine) as session:
        registered = service.add_location(
            session, "file", str(path), by="tests", settings=settings.catalog
        )
        session.commit()
        location_id = registered.location.id
    page = client.get("/catalog/component/default/twice", headers=HTML).text
    assert 'role="alert" aria-labelledby="errors-heading"' in page
    assert "Processing errors" in page
    assert "is defined twice" in page
    table = client.get("/catalog", params={"kind": "component"}, headers=HTML).text
    assert re.search(
        r'twice</a>\s*(<br><small>First</small>)?\s*<span class="status status-failed">errors',
        table,
    )

    write_catalog_file(repos, "catalog-info.yaml", component("twice"))
    with Session(engine) as session:
        service.refresh_location(
            session, service.get_location(session, location_id), settings.catalog
        )
        session.commit()
    orphan = client.get("/catalog/component/default/leaving", headers=HTML).text
    assert "<strong>Orphan.</strong>" in orphan
    assert "Processing errors" not in client.get("/catalog/component/default/twice").text


def test_links_that_are_not_web_addresses_are_not_made_links(
    client: TestClient, engine: Engine, settings: Settings, repos: Path
) -> None:
    hostile = component(
        "hostile",
        title='<script>alert("title")</script>',
        description="<img src=x onerror=alert(1)>",
        links=[
            {"url": "javascript:alert(1)", "title": "Click me"},
            {"url": "https://example.com/ok", "title": "Fine"},
        ],
    )
    path = write_catalog_file(repos, "hostile.yaml", hostile)
    with Session(engine) as session:
        service.add_location(session, "file", str(path), by="tests", settings=settings.catalog)
        session.commit()
    page = client.get("/catalog/component/default/hostile", headers=HTML).text
    assert 'href="javascript:' not in page
    assert "Click me <small>(<code>javascript:alert(1)</code>, not a web address)</small>" in page
    assert '<a href="https://example.com/ok" rel="noopener noreferrer">Fine</a>' in page
    assert "<script>alert" not in page
    assert "&lt;script&gt;alert(&#34;title&#34;)&lt;/script&gt;" in page
    assert "<img src=x" not in page


def test_plugins_add_tabs_to_the_kinds_they_name(
    settings: Settings, engine: Engine, plugins: Plugins, admin_headers: dict[str, str], demo: None
) -> None:
    tab = EntityTab("deployments", "Deployments", "/serving/{kind}/{namespace}/{name}", ("Model",))
    with throwaway_plugin(plugins, "serving_tabs", paved_entity_tabs=lambda: [tab]):
        app = create_app(settings, plugins=plugins, engine=engine)
        with TestClient(app, headers={**admin_headers, **HTML}) as client:
            model = client.get("/catalog/model/default/fraud-scorer").text
            assert (
                '<a href="/catalog/model/default/fraud-scorer?tab=deployments" '
                'hx-get="/catalog/model/default/fraud-scorer?tab=deployments"'
            ) in model
            component_page = client.get("/catalog/component/default/checkout-service").text
            assert "Deployments" not in component_page
            opened = client.get("/catalog/model/default/fraud-scorer?tab=deployments").text
            assert 'hx-get="/serving/model/default/fraud-scorer" hx-trigger="load"' in opened
            assert '<a href="/serving/model/default/fraud-scorer">' in opened  # without JS
            assert 'aria-current="page">Deployments</a>' in opened


# -- The relations graph on its own -------------------------------------------------------


def test_the_graph_escapes_what_catalog_files_say_and_links_only_entities_it_holds() -> None:
    centre = graph.Node("component:default/a", "Component", "a", '"><script>x</script>', None)
    edges = [
        graph.Edge(
            graph.Node(
                'api:default/<b>"x"',
                "API",
                '<script>alert("x")</script>',
                "T & <i>",
                "/catalog/api/default/%3Cb%3E",
            ),
            ("providesApi",),
        ),
        graph.Edge(graph.Node("group:default/ghost", "Group", "ghost"), ("ownedBy",)),
    ]
    svg = str(graph.relations_svg(centre, edges))
    assert "<script>" not in svg
    assert "&lt;script&gt;alert(&quot;x&quot;)" in svg
    root = ET.fromstring(svg)
    ns = {"svg": "http://www.w3.org/2000/svg"}
    links = list(root.iterfind(".//svg:a", ns))
    assert [a.get("data-ref") for a in links] == ['api:default/<b>"x"']
    ghost = root.find(".//svg:g[@data-ref='group:default/ghost']", ns)
    assert ghost is not None
    assert "not in the catalog" in (ghost.findtext("svg:title", namespaces=ns) or "")


def test_the_graph_of_forty_neighbours_is_balanced_and_grows_taller() -> None:
    centre = graph.Node("group:default/big", "Group", "big")
    edges = [
        graph.Edge(
            graph.Node(f"user:default/u{i:02}", "User", f"u{i:02}", href="/x"), ("hasMember",)
        )
        for i in range(25)
    ] + [
        graph.Edge(
            graph.Node(f"component:default/c{i:02}", "Component", f"c{i:02}", href="/y"),
            ("ownerOf",),
        )
        for i in range(15)
    ]
    root = ET.fromstring(str(graph.relations_svg(centre, edges)))
    ns = {"svg": "http://www.w3.org/2000/svg"}
    xs = Counter(rect.get("x") for rect in root.iterfind(".//svg:a/svg:rect", ns))
    assert sorted(xs.values()) == [15, 25]  # one relation type a side
    height = float(root.get("viewBox", "").split()[3])
    assert height >= 25 * graph.NODE_HEIGHT
    long_name = graph.Node("x:default/" + "n" * 80, "X", "n" * 80, href="/z")
    svg = str(graph.relations_svg(centre, [graph.Edge(long_name, ("dependsOn",))]))
    assert "n" * 80 not in svg.split("</title>", 2)[-1]  # cut in the box, whole in the tooltip
    assert "…" in svg


# -- Registering --------------------------------------------------------------------------


def test_the_register_page_has_the_form_and_the_registered_locations(
    catalog: TestClient, repos: Path
) -> None:
    page = catalog.get("/catalog/register", headers=HTML).text
    assert "<h1>Register an existing component</h1>" in page
    assert '<label for="location-target">Location</label>' in page
    assert f"Files under {repos}" in page
    assert "catalog/demo/catalog.yaml</code>" in page  # the demo's location is listed


def test_a_dry_run_shows_what_would_be_imported_and_changes_nothing(
    catalog: TestClient, repos: Path, engine: Engine
) -> None:
    path = write_catalog_file(
        repos,
        "catalog-info.yaml",
        component("new-service", title="New service"),
        component("bad name"),
    )
    preview = catalog.get(
        "/catalog/register/preview", params={"type": "file", "target": str(path)}, headers=HTML
    )
    assert preview.status_code == 200
    text = preview.text
    assert "What would be imported" in text
    assert "<code>component:default/new-service</code>" in text
    assert "<td>New service</td>" in text
    assert "new</td>" in text
    assert "is not a valid" in text  # the bad document's problem
    assert '<button type="submit">Import 1 entity</button>' in text
    assert f'<input type="hidden" name="target" value="{path}">' in text
    with Session(engine) as session:
        assert all(location.target != str(path) for location in service.list_locations(session))
    assert catalog.get("/catalog/component/default/new-service").status_code == 404

    # The demo is registered already: it says so and offers no import.
    demo = catalog.get(
        "/catalog/register/preview",
        params={"type": "file", "target": str(service.DEMO_TARGET)},
        headers=HTMX,
    ).text
    assert "<html" not in demo
    assert "registered already" in demo
    assert "Import " not in demo
    assert "yes</a>, updated on import" in demo


def test_a_location_that_cannot_be_read_is_explained_beside_the_field(
    catalog: TestClient, repos: Path
) -> None:
    outside = catalog.get(
        "/catalog/register/preview",
        params={"type": "file", "target": "/etc/hostname"},
        headers=HTML,
    ).text
    assert 'aria-invalid="true" aria-describedby="target-problems" autofocus' in outside
    assert re.search(
        r'<small id="target-problems">/etc/hostname is outside the catalog\'s file roots; '
        rf"expected a file under one of catalog.file_roots \({re.escape(str(repos))}\)",
        outside.replace("&#39;", "'"),
    )
    assert "What would be imported" not in outside
    missing = catalog.get(
        "/catalog/register/preview",
        params={"type": "file", "target": str(repos / "none.yaml")},
        headers=HTML,
    ).text
    assert "does not exist; expected an existing YAML file" in missing
    empty = catalog.get("/catalog/register/preview", params={"target": ""}, headers=HTML).text
    assert '<small id="target-problems">missing' in empty


def test_importing_registers_the_location_and_links_what_it_added(
    catalog: TestClient, repos: Path
) -> None:
    path = write_catalog_file(repos, "catalog-info.yaml", component("imported-service"))
    response = catalog.post(
        "/catalog/register", data={"type": "file", "target": str(path)}, headers=HTML
    )
    assert response.status_code == 201
    assert "<h1>Registered</h1>" in response.text
    assert "Imported 1 entity." in response.text
    assert "0 updated, 0 unchanged" in response.text
    assert (
        '<a href="/catalog/component/default/imported-service">imported-service</a>'
        in response.text
    )
    assert (
        catalog.get("/catalog/component/default/imported-service", headers=HTML).status_code == 200
    )
    listed = catalog.get("/catalog/register", headers=HTML).text
    assert f"<code>file:{path}</code>" in listed
    again = catalog.post(
        "/catalog/register", data={"type": "file", "target": str(path)}, headers=HTML
    )
    assert again.status_code == 409
    assert "already registered" in again.text


def test_registering_needs_the_right_to_create_locations(
    client_as: ClientFactory, demo: None, repos: Path
) -> None:
    path = write_catalog_file(repos, "catalog-info.yaml", component("denied-service"))
    scientist = client_as("data_scientist")
    assert scientist.get("/catalog/register", headers=HTML).status_code == 200
    denied = scientist.get("/catalog/register/preview", params={"target": str(path)}, headers=HTML)
    assert denied.status_code == 403
    assert "catalog.location.create" in denied.text
    posted = scientist.post("/catalog/register", data={"type": "file", "target": str(path)})
    assert posted.status_code == 403
    engineer = client_as("ml_engineer", groups=["group:default/fraud"])
    assert (
        engineer.post("/catalog/register", data={"type": "file", "target": str(path)}).status_code
        == 201
    )


@pytest.fixture
def signed_in(settings: Settings, engine: Engine, plugins: Plugins) -> Iterator[TestClient]:
    """A browser-like client signed in as root through the local sign-in page."""
    local = settings.auth.local.model_copy(update={"enabled": True})
    demo_settings = settings.model_copy(
        update={"auth": settings.auth.model_copy(update={"local": local})}
    )
    app = create_app(demo_settings, plugins=plugins, engine=engine)
    with TestClient(app, headers=HTML, follow_redirects=False) as client:
        login = client.get("/auth/login")
        token = CSRF_INPUT.search(login.text)
        assert token is not None
        signed = client.post(
            "/auth/local", data={"user": "root", "csrf_token": token.group(1), "next": "/"}
        )
        assert signed.status_code == 303
        yield client


def test_a_browser_session_imports_with_the_forms_csrf_token(
    signed_in: TestClient, repos: Path
) -> None:
    path = write_catalog_file(repos, "catalog-info.yaml", component("session-service"))
    preview = signed_in.get("/catalog/register/preview", params={"target": str(path)}).text
    token = CSRF_INPUT.search(preview)
    assert token is not None
    without = signed_in.post("/catalog/register", data={"type": "file", "target": str(path)})
    assert without.status_code == 403
    imported = signed_in.post(
        "/catalog/register",
        data={"type": "file", "target": str(path), "csrf_token": token.group(1)},
    )
    assert imported.status_code == 201, imported.text
    assert "session-service" in imported.text


def test_an_entity_page_refreshes_unregisters_and_deletes_orphans_with_its_forms(
    signed_in: TestClient, engine: Engine, settings: Settings, repos: Path
) -> None:
    path = write_catalog_file(
        repos, "catalog-info.yaml", component("kept", title="Old"), component("leaving")
    )
    with Session(engine) as session:
        service.add_location(session, "file", str(path), by="tests", settings=settings.catalog)
        session.commit()
    page = signed_in.get("/catalog/component/default/kept").text
    token = CSRF_INPUT.search(page)
    assert token is not None
    assert 'action="/catalog/component/default/kept/refresh"' in page
    assert f"<code>file:{path}</code> and every entity it brought" in page
    assert "Delete this entity" not in page  # it has a location that would bring it back

    write_catalog_file(repos, "catalog-info.yaml", component("kept", title="New"))
    refresh = "/catalog/component/default/kept/refresh"
    assert signed_in.post(refresh).status_code == 403  # a form without its token
    refreshed = signed_in.post(refresh, data={"csrf_token": token.group(1)})
    assert refreshed.status_code == 303
    assert refreshed.headers["location"] == "/catalog/component/default/kept?refreshed=1"
    after = signed_in.get(refreshed.headers["location"]).text
    assert "<h1>New</h1>" in after
    assert "Read again from its location just now." in after

    orphan = signed_in.get("/catalog/component/default/leaving").text
    assert "<strong>Orphan.</strong>" in orphan
    deleted = signed_in.post(
        "/catalog/component/default/leaving/delete", data={"csrf_token": token.group(1)}
    )
    assert deleted.status_code == 303
    assert signed_in.get("/catalog/component/default/leaving").status_code == 404

    unregistered = signed_in.post(
        "/catalog/component/default/kept/unregister", data={"csrf_token": token.group(1)}
    )
    assert unregistered.status_code == 303
    assert "Unregistered <code>" in signed_in.get(unregistered.headers["location"]).text
    assert signed_in.get("/catalog/component/default/kept").status_code == 404
    with Session(engine) as session:
        assert service.list_locations(session) == []


def test_a_role_without_the_right_is_told_why_an_entity_action_is_refused(
    client_as: ClientFactory, demo: None
) -> None:
    scientist = client_as("data_scientist")
    refused = scientist.post("/catalog/model/default/fraud-scorer/unregister", headers=HTML)
    assert refused.status_code == 403
    assert "catalog.location.delete" in refused.text
    assert scientist.get("/catalog/model/default/fraud-scorer", headers=HTML).status_code == 200

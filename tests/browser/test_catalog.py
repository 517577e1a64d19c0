"""The catalog in a real browser: searching and filtering without reloads, the relations
graph, and registering a location (dry run, then import)."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from playwright.sync_api import Page, expect
from sqlalchemy.engine import Engine
from sqlmodel import Session

from catalog import service
from portal.plugins import Plugins
from portal.settings import Settings

from .conftest import LivePortal

pytestmark = pytest.mark.browser
EN_DASH = "\N{EN DASH}"  # the summary writes ranges with it ("1 to 25")


@pytest.fixture
def settings(settings: Settings, tmp_path: Path) -> Settings:
    roots = tmp_path / "repos"
    roots.mkdir()
    return settings.model_copy(
        update={"catalog": settings.catalog.model_copy(update={"file_roots": [roots]})}
    )


@pytest.fixture
def portal(
    serve: Callable[[Plugins], LivePortal], plugins: Plugins, engine: Engine, settings: Settings
) -> LivePortal:
    """The portal serving Paved's demo catalog."""
    with Session(engine) as session:
        service.register_demo(session, settings.catalog)
        session.commit()
    return serve(plugins)


def mark_page(page: Page) -> None:
    """Leave a mark that only a full page load would wipe."""
    page.evaluate("document.body.dataset.marker = 'still-here'")


def was_not_reloaded(page: Page) -> bool:
    return bool(page.evaluate("document.body.dataset.marker") == "still-here")


def names_in_table(page: Page) -> list[str]:
    return page.locator("#catalog-table tbody th[scope=row] > a").all_inner_texts()


def test_typing_a_search_updates_the_table_in_place(page: Page, portal: LivePortal) -> None:
    page.goto(portal.url + "/catalog")
    expect(page).to_have_title("Catalog · Paved")
    expect(page.get_by_role("status")).to_contain_text(f"1{EN_DASH}25 of")
    mark_page(page)
    page.get_by_role("searchbox", name="Search").press_sequentially("fraud scorer", delay=20)
    expect(page).to_have_url(re.compile(r"/catalog\?q=fraud\+scorer$"))
    found = page.request.get(
        portal.url + "/api/catalog/entities/by-query",
        params={"fullTextFilterTerm": "fraud scorer", "limit": 100},
    ).json()
    expected = sorted(item["metadata"]["name"] for item in found["items"])
    assert 2 <= len(expected) < 25
    expect(page.locator("#catalog-table tbody tr")).to_have_count(len(expected))
    assert sorted(names_in_table(page)) == expected
    assert "fraud-scorer" in expected
    expect(page.get_by_role("status")).to_contain_text(
        f"1{EN_DASH}{len(expected)} of {len(expected)}"
    )
    # The counts beside the filters follow the search.
    models = sum(item["kind"] == "Model" for item in found["items"])
    expect(page.get_by_label("Kind").locator("option[value=model]")).to_have_text(
        f"Model ({models})"
    )
    assert was_not_reloaded(page)
    # The search box kept the focus and what was typed.
    expect(page.get_by_role("searchbox", name="Search")).to_be_focused()
    expect(page.get_by_role("searchbox", name="Search")).to_have_value("fraud scorer")


def test_choosing_a_filter_then_sorting_and_paging_swap_only_the_results(
    page: Page, portal: LivePortal
) -> None:
    page.goto(portal.url + "/catalog")
    mark_page(page)
    page.get_by_label("Kind").select_option("user")
    expect(page).to_have_url(re.compile(r"/catalog\?kind=user$"))
    expect(page.get_by_role("status")).to_contain_text(f"1{EN_DASH}16 of 16 entities")
    assert len(names_in_table(page)) == 16
    expect(page.locator("#catalog-table tbody td:nth-child(2)").first).to_have_text("User")
    # Within users, the other kinds still show what choosing them would give.
    expect(page.get_by_label("Kind").locator("option[value=component]")).to_have_text(
        "Component (16)"
    )

    page.get_by_role("link", name="Name").click()
    expect(page.locator("#catalog-table th[aria-sort=ascending]")).to_contain_text("Name")
    page.get_by_role("link", name="Name ▲").click()
    expect(page.locator("#catalog-table th[aria-sort=descending]")).to_contain_text("Name")
    names = names_in_table(page)
    assert names == sorted(names, reverse=True)
    expect(page).to_have_url(re.compile(r"kind=user&sort=name&dir=desc$"))

    page.get_by_label("Kind").select_option("")
    expect(page.get_by_role("status")).to_contain_text(f"1{EN_DASH}25 of")
    page.get_by_role("link", name="Next page").click()
    expect(page.get_by_role("status")).to_contain_text(f"26{EN_DASH}50 of")
    expect(page).to_have_url(re.compile(r"sort=name&dir=desc&offset=25$"))
    assert was_not_reloaded(page)

    page.go_back()
    expect(page.get_by_role("status")).to_contain_text(f"1{EN_DASH}25 of")


def test_the_filters_work_without_javascript(page_without_js: Page, portal: LivePortal) -> None:
    page = page_without_js
    page.goto(portal.url + "/catalog")
    page.get_by_label("Kind").select_option("model")
    page.get_by_label("Lifecycle").select_option("experimental")
    page.get_by_role("button", name="Filter").click()
    expect(page).to_have_url(re.compile(r"kind=model.*lifecycle=experimental"))
    experimental = [
        item["metadata"]["name"]
        for item in page.request.get(
            portal.url + "/api/catalog/entities/by-query",
            params={"filter": "kind=model,spec.lifecycle=experimental"},
        ).json()["items"]
    ]
    assert names_in_table(page) == sorted(experimental)
    assert "fraud-graph-scorer" in experimental


def test_the_entity_graph_links_to_related_entities(page: Page, portal: LivePortal) -> None:
    page.goto(portal.url + "/catalog")
    page.get_by_role("link", name="checkout-service", exact=True).click()
    expect(page.get_by_role("heading", name="Checkout Service", level=1)).to_be_visible()
    graph = page.locator("#entity-graph svg")
    expect(graph).to_be_visible()
    expect(graph.locator("g.node.centre")).to_contain_text("checkout-service")
    expect(graph.locator("g.edge text", has_text="providesApi")).to_have_count(2)
    owner = graph.locator('a[data-ref="group:default/checkout"]')
    expect(owner).to_be_visible()
    box = owner.bounding_box()
    assert box is not None
    assert box["width"] > 100  # drawn at a readable size
    owner.click()
    expect(page).to_have_url(portal.url + "/catalog/group/default/checkout")
    expect(page.get_by_role("heading", name="Checkout", level=1)).to_be_visible()
    # The team's own graph has its people and what it owns, each a link.
    team = page.locator("#entity-graph svg")
    expect(team.locator('a[data-ref="component:default/checkout-service"]')).to_be_visible()
    member = team.locator("a[data-ref^='user:']").first
    expect(member).to_be_visible()
    member.click()
    expect(page).to_have_url(re.compile(r"/catalog/user/default/[^/]+$"))

    # The YAML tab swaps in place.
    page.goto(portal.url + "/catalog/component/default/checkout-service")
    mark_page(page)
    page.get_by_role("navigation", name="Entity sections").get_by_role("link", name="YAML").click()
    expect(page.locator("#entity-yaml")).to_contain_text("name: checkout-service")
    expect(page).to_have_url(re.compile(r"\?tab=yaml$"))
    assert was_not_reloaded(page)


def test_registering_a_location_shows_a_dry_run_then_imports(
    page: Page, portal: LivePortal, settings: Settings
) -> None:
    path = settings.catalog.file_roots[0] / "catalog-info.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "backstage.io/v1alpha1",
                "kind": "Component",
                "metadata": {"name": "loyalty-service", "title": "Loyalty service"},
                "spec": {"type": "service", "lifecycle": "experimental", "owner": "checkout"},
            }
        )
    )
    page.goto(portal.url + "/catalog")
    page.get_by_role("button", name="Register an existing component").click()
    expect(page.get_by_role("heading", name="Register an existing component")).to_be_visible()

    target = page.get_by_label("Location", exact=True)
    target.fill("/etc/hostname")
    page.get_by_role("button", name="Analyse").click()
    expect(page.locator("#target-problems")).to_contain_text("outside the catalog's file roots")
    expect(page.get_by_label("Location", exact=True)).to_have_attribute("aria-invalid", "true")

    page.get_by_label("Location", exact=True).fill(str(path))
    page.get_by_role("button", name="Analyse").click()
    preview = page.locator("#register-preview")
    expect(preview).to_contain_text("What would be imported")
    expect(preview.get_by_role("rowheader")).to_have_text("component:default/loyalty-service")
    expect(preview).to_contain_text("new")
    # A dry run imports nothing.
    assert page.request.get(portal.url + "/catalog/component/default/loyalty-service").status == 404

    page.get_by_role("button", name="Import 1 entity").click()
    expect(page.get_by_role("heading", name="Registered", level=1)).to_be_visible()
    page.get_by_role("link", name="loyalty-service").click()
    expect(page.get_by_role("heading", name="Loyalty service", level=1)).to_be_visible()
    expect(page.locator("#entity-graph a[data-ref='group:default/checkout']")).to_be_visible()

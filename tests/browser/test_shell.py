"""The web shell in a real browser: navigation, the plugin page, live task logs, no-JS reading."""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy.engine import Engine
from sqlmodel import Session

from portal.plugins import Plugins
from portal.tasks import TaskHandler
from portal.worker import TaskContext

from .conftest import LivePortal
from factories import make_task, throwaway_plugin

pytestmark = pytest.mark.browser


def test_home_page_has_the_navigation_the_plugins_contribute(
    page: Page, serve: Callable[[Plugins], LivePortal], plugins: Plugins
) -> None:
    portal = serve(plugins)
    page.goto(portal.url + "/")
    expect(page).to_have_title("Home · Paved")
    nav = page.get_by_role("navigation", name="Main")
    for label in ("Home", "Tasks", "Plugins"):
        expect(nav.get_by_role("link", name=label, exact=True)).to_be_visible()
    expect(nav.get_by_role("link", name="Home", exact=True)).to_have_attribute(
        "aria-current", "page"
    )
    assert page.evaluate("typeof window.htmx") == "object"  # htmx from npm is served
    # Pico's stylesheet (from npm) is loaded and parsed.
    rules = page.evaluate("""[...document.styleSheets]
        .filter(sheet => (sheet.href || '').endsWith('/static/vendor/pico.min.css'))
        .map(sheet => sheet.cssRules.length)""")
    assert len(rules) == 1
    assert rules[0] > 100
    page.get_by_role("link", name="Plugins", exact=True).click()
    expect(page).to_have_url(portal.url + "/admin/plugins")


def test_plugin_page_lists_plugins_with_version_hooks_and_status_and_refreshes_in_place(
    page: Page, serve: Callable[[Plugins], LivePortal], plugins: Plugins
) -> None:
    portal = serve(plugins)
    page.goto(portal.url + "/admin/plugins")
    expect(page.get_by_role("heading", name="Plugins", level=1)).to_be_visible()
    core = page.locator("#plugin-core")
    expect(core).to_contain_text("portal.plugin")
    expect(core).to_contain_text("ok")
    expect(core).to_contain_text("paved_routes")
    expect(page.get_by_role("cell", name="admin.plugins.read")).to_be_visible()
    page.evaluate("document.body.dataset.marker = 'still-here'")
    with page.expect_response(
        lambda r: r.url.endswith("/admin/plugins") and r.request.headers.get("hx-request") == "true"
    ):
        page.get_by_role("button", name="Refresh").click()
    expect(page.locator("#plugin-core")).to_contain_text("ok")
    # htmx swapped the table: the page itself was not reloaded.
    assert page.evaluate("document.body.dataset.marker") == "still-here"


def test_a_broken_plugin_is_shown_as_failed_with_its_reason(
    page: Page,
    serve: Callable[[Plugins], LivePortal],
    installed_plugins: Callable[..., dict[str, str]],
) -> None:
    installed_plugins("broken_import")
    portal = serve(Plugins.discover())
    page.goto(portal.url + "/")
    expect(page.get_by_role("status")).to_contain_text("broken_import")
    page.goto(portal.url + "/admin/plugins")
    row = page.locator("#plugin-broken_import")
    expect(row).to_contain_text("failed")
    expect(row).to_contain_text("No module named 'paved_lineage_dependency_that_is_not_installed'")


def test_a_task_page_follows_the_log_live(
    page: Page, serve: Callable[[Plugins], LivePortal], plugins: Plugins, engine: Engine
) -> None:
    proceed = threading.Event()

    def train(ctx: TaskContext) -> None:
        ctx.log("loading data")
        ctx.progress(1, 2)
        proceed.wait(10)
        ctx.log("epoch 1: loss 0.42")
        ctx.progress(2, 2)

    handler = TaskHandler("test.train", train, title="Train")
    with throwaway_plugin(plugins, "trainer", paved_task_handlers=lambda: [handler]):
        portal = serve(plugins)
        with Session(engine) as session:
            task = make_task(session, "test.train")
        page.goto(f"{portal.url}/tasks/{task.id}")
        log = page.locator("#task-log")
        expect(log).to_contain_text("loading data")
        proceed.set()
        # New lines and the final status arrive over SSE, without reloading the page.
        expect(log).to_contain_text("epoch 1: loss 0.42")
        expect(page.locator("#task-status")).to_have_text("succeeded")
        expect(page.locator("#task-progress")).to_have_attribute("value", "2")
        expect(page.get_by_role("button", name="Cancel task")).to_have_count(0)


def test_pages_read_correctly_without_javascript_and_forms_have_labels(
    page_without_js: Page,
    serve: Callable[[Plugins], LivePortal],
    plugins: Plugins,
    engine: Engine,
) -> None:
    portal = serve(plugins)
    with Session(engine) as session:
        task = make_task(session, "gone.plugin")
    page = page_without_js
    page.goto(portal.url + "/tasks")
    expect(page.get_by_role("heading", name="Tasks", level=1)).to_be_visible()
    expect(page.get_by_label("Status")).to_be_visible()
    for field in page.locator("input:not([type=hidden]), select, textarea").all():
        field_id = field.get_attribute("id")
        assert field_id
        assert page.locator(f"label[for='{field_id}']").count() == 1
    page.get_by_label("Status").select_option("queued")
    page.get_by_role("button", name="Filter").click()
    expect(page).to_have_url(portal.url + "/tasks?status=queued")
    page.get_by_role("link", name=f"{task.kind} {{}}").click()
    expect(page.locator("#task-status")).to_have_text("queued")
    expect(page.get_by_role("status")).to_contain_text("no worker in this portal runs gone.plugin")
    # Cancelling works as a plain form post.
    page.get_by_role("button", name="Cancel task").click()
    expect(page.locator("#task-status")).to_have_text("cancelled")
    expect(page.locator("#task-log")).to_contain_text("cancelled before it started")


def test_a_missing_page_is_a_readable_error_page(
    page: Page, serve: Callable[[Plugins], LivePortal], plugins: Plugins
) -> None:
    portal = serve(plugins)
    response = page.goto(portal.url + "/tasks/999")
    assert response is not None
    assert response.status == 404
    expect(page.get_by_role("heading", name="Not found")).to_be_visible()
    expect(page.get_by_role("alert")).to_contain_text("there is no task 999")
    page.get_by_role("link", name="Back to the home page").click()
    expect(page).to_have_title("Home · Paved")

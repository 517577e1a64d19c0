"""Creating a project in a real browser: home, Create, a template, its form, the run's log
followed live, then the new entity's page."""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy.engine import Engine
from sqlmodel import Session

from catalog import service
from portal.plugins import Plugins
from portal.settings import Settings
from tests.scaffolder.test_tasks import SERVICE, SKELETON

from .conftest import LivePortal
from .test_catalog import mark_page, was_not_reloaded

pytestmark = pytest.mark.browser


@pytest.fixture
def settings(settings: Settings, tmp_path: Path) -> Settings:
    roots = [tmp_path / "templates", settings.git_root]
    return settings.model_copy(
        update={"catalog": settings.catalog.model_copy(update={"file_roots": roots})}
    )


@pytest.fixture
def portal(
    serve: Callable[[Plugins], LivePortal],
    plugins: Plugins,
    engine: Engine,
    settings: Settings,
    tmp_path: Path,
) -> LivePortal:
    folder = tmp_path / "templates" / "model-service"
    for path, text in {"template.yaml": SERVICE, **SKELETON}.items():
        (folder / path).parent.mkdir(parents=True, exist_ok=True)
        (folder / path).write_text(textwrap.dedent(text))
    with Session(engine) as session:
        service.add_location(
            session, "file", str(folder / "template.yaml"), by="tests", settings=settings.catalog
        )
        session.commit()
    return serve(plugins)


def test_one_click_from_the_home_page_to_the_new_entity(page: Page, portal: LivePortal) -> None:
    page.goto(portal.url + "/")
    page.get_by_role("link", name="Create", exact=True).click()
    page.get_by_role("link", name="Model service").click()
    expect(page.get_by_role("heading", name="Model service")).to_be_visible()

    page.get_by_label("Name").fill("Bad Name")
    page.get_by_label("Name").press("Tab")  # a change: htmx checks the field
    expect(page.locator("#field-name-problems")).to_contain_text("does not match")
    page.get_by_label("Name").fill("browser-made")
    page.get_by_label("Owner").select_option("group:default/platform")
    expect(page.locator("#field-name-problems")).to_have_count(0)
    page.get_by_role("button", name="Create").click()

    expect(page).to_have_url(__import__("re").compile(r"/create/tasks/\d+$"))
    mark_page(page)
    expect(page.locator("#run-status")).to_have_text("completed", timeout=20_000)
    expect(page.locator('[data-step="register"] [data-step-status]')).to_have_text("completed")
    expect(page.locator("#run-log")).to_contain_text("[publish] published fraud/browser-made")
    assert was_not_reloaded(page)  # followed live, not by reloading

    page.get_by_role("button", name="Open in catalog").click()
    expect(page).to_have_url(portal.url + "/catalog/component/default/browser-made")
    expect(page.get_by_role("heading", name="browser-made")).to_be_visible()

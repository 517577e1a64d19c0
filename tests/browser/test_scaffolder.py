"""Creating a project in a real browser: home, Create, the classification golden path, its
form, the run's log followed live, then the new entities' pages."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy.engine import Engine
from sqlmodel import Session

from catalog import service
from portal.plugins import Plugins
from portal.settings import Settings
from scaffolder.golden_paths import GOLDEN_PATHS

from .conftest import LivePortal
from .test_catalog import mark_page, was_not_reloaded

pytestmark = pytest.mark.browser


@pytest.fixture
def portal(
    serve: Callable[[Plugins], LivePortal],
    plugins: Plugins,
    engine: Engine,
    settings: Settings,
    tmp_path: Path,
) -> LivePortal:
    with Session(engine) as session:
        service.register_demo(session, settings.catalog)  # the teams to own the project
        service.add_location(
            session,
            "file",
            str(GOLDEN_PATHS / "catalog-info.yaml"),
            by="tests",
            settings=settings.catalog,
        )
        session.commit()
    return serve(plugins)


def test_one_click_from_the_home_page_to_the_new_entity(page: Page, portal: LivePortal) -> None:
    page.goto(portal.url + "/")
    page.get_by_role("link", name="Create", exact=True).click()
    page.get_by_role("link", name="Classification model").click()
    expect(page.get_by_role("heading", name="Classification model")).to_be_visible()

    page.get_by_label("Name").fill("Bad Name")
    page.get_by_label("Name").press("Tab")  # a change: htmx checks the field
    expect(page.locator("#field-name-problems")).to_contain_text("does not match")
    page.get_by_label("Name").fill("browser-made")
    page.get_by_label("Owner").select_option("group:default/fraud")
    page.get_by_label("Algorithm").select_option("random-forest")
    expect(page.locator("#field-name-problems")).to_have_count(0)
    page.get_by_role("button", name="Create").click()

    expect(page).to_have_url(re.compile(r"/create/tasks/\d+$"))
    mark_page(page)
    expect(page.locator("#run-status")).to_have_text("completed", timeout=20_000)
    expect(page.locator('[data-step="register"] [data-step-status]')).to_have_text("completed")
    expect(page.locator("#run-log")).to_contain_text("[publish] published fraud/browser-made")
    assert was_not_reloaded(page)  # followed live, not by reloading

    expect(page.locator("#run-summary")).to_contain_text("git clone file://")

    page.get_by_role("button", name="Open in catalog").click()
    expect(page).to_have_url(portal.url + "/catalog/component/default/browser-made")
    expect(page.get_by_role("heading", name="browser-made")).to_be_visible()
    # The project's Model and Dataset are in the catalog too.
    page.goto(portal.url + "/catalog/model/default/browser-made")
    expect(page.get_by_role("heading", name="browser-made")).to_be_visible()


def test_a_choice_brings_in_a_dataset_picker_that_searches_the_catalog(
    page: Page, portal: LivePortal
) -> None:
    page.goto(portal.url + "/create/templates/default/classification-model")
    expect(page.get_by_label("Dataset")).to_have_count(0)

    page.get_by_label("Train on").select_option("catalog")
    picker = page.get_by_label("Dataset")
    expect(picker).to_be_visible()  # brought in by the form's dependencies
    picker.fill("fraud lab")
    choices = page.locator("#field-dataset-choices option")
    expect(choices).to_have_count(1)
    expect(choices).to_have_attribute("value", "dataset:default/fraud-labels-2026")

    picker.fill("dataset:default/fraud-labels-2026")
    page.get_by_label("Name").fill("picked-data")
    page.get_by_label("Owner").select_option("group:default/fraud")
    page.wait_for_load_state("networkidle")  # each change has been checked and swapped in
    expect(page.get_by_label("Dataset")).to_have_value("dataset:default/fraud-labels-2026")
    page.get_by_role("button", name="Create").click()
    expect(page).to_have_url(re.compile(r"/create/tasks/\d+$"))
    expect(page.locator("#run-status")).to_have_text("completed", timeout=20_000)
    page.goto(portal.url + "/catalog/model/default/picked-data")
    expect(page.get_by_role("link", name="fraud-labels-2026").first).to_be_visible()

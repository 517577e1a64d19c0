"""Signing in for real in Chromium: through the OIDC provider's own login page, and locally."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy.engine import Engine
from sqlmodel import Session

from portal.models import Task, TaskStatus
from portal.plugins import Plugins
from portal.settings import Settings

from .conftest import LivePortal
from factories import make_task
from oidc_portal import provider_and_portal
from oidc_provider import password_for

pytestmark = pytest.mark.browser


def test_sign_in_through_the_provider_lands_signed_in_and_sign_out_ends_both_sessions(
    fresh_page: Page, settings: Settings, engine: Engine, plugins: Plugins
) -> None:
    page = fresh_page
    with provider_and_portal(settings, engine, plugins) as portal:
        page.goto(f"{portal.url}/tasks")
        # The provider's own page, not the portal's.
        expect(page).to_have_title("Sign in - Test OIDC Provider")
        page.get_by_label("Username").fill("alice")
        page.get_by_label("Password").fill(password_for("alice"))
        page.get_by_role("button", name="Sign in").click()

        expect(page).to_have_url(f"{portal.url}/tasks")
        nav = page.get_by_role("navigation", name="Main")
        expect(nav.get_by_role("link", name="Alice Example")).to_be_visible()
        page.goto(f"{portal.url}/")
        expect(page.get_by_role("heading", name="Signed in as Alice Example")).to_be_visible()
        expect(page.locator(".you")).to_contain_text("ml_engineer")
        expect(page.locator(".you")).to_contain_text("group:default/fraud")

        nav.get_by_role("button", name="Sign out").click()
        # The provider's logout page confirms by itself and sends the browser back.
        expect(page).to_have_url(re.compile(re.escape(f"{portal.url}/auth/login?signed_out=true")))
        expect(page.get_by_text("You are signed out.")).to_be_visible()
        page.goto(f"{portal.url}/")
        expect(page).to_have_title("Sign in - Test OIDC Provider")  # asked for a password again


def test_local_sign_in_shows_who_you_are_and_why_something_is_not_allowed(
    fresh_page: Page, serve_demo: Callable[[Plugins], LivePortal], plugins: Plugins
) -> None:
    page = fresh_page
    portal = serve_demo(plugins)
    page.goto(f"{portal.url}/audit")
    expect(page).to_have_url(re.compile(r"/auth/login\?next=%2Faudit$"))
    expect(page.get_by_role("status").first).to_contain_text("Demo sign-in is on")
    page.get_by_role("button", name="Dana (data scientist, churn)").click()

    # Back where she was going, which a data scientist may not read: the reasons, in words.
    expect(page).to_have_url(f"{portal.url}/audit")
    expect(page.get_by_role("heading", name="Not allowed")).to_be_visible()
    alert = page.get_by_role("alert")
    expect(alert).to_contain_text("You may not read and export the audit log (audit.log.read).")
    expect(alert).to_contain_text("none of your roles (data_scientist) allows audit.log.read")
    expect(alert).to_contain_text("Dana (data scientist, churn)")


def test_htmx_sends_the_csrf_token_with_state_changes(
    fresh_page: Page, serve_demo: Callable[[Plugins], LivePortal], plugins: Plugins, engine: Engine
) -> None:
    page = fresh_page
    portal = serve_demo(plugins)
    with Session(engine) as session:
        task_id = make_task(session, "nobody.runs_this").id
    page.goto(f"{portal.url}/auth/login")
    page.get_by_role("button", name="Root (platform admin)").click()
    expect(page.get_by_role("heading", name="Signed in as Root (platform admin)")).to_be_visible()
    status = page.evaluate(
        """url => new Promise(resolve => {
            document.body.addEventListener('htmx:afterRequest',
                event => resolve(event.detail.xhr.status), {once: true});
            htmx.ajax('POST', url, {source: document.body, swap: 'none'});
        })""",
        f"/api/tasks/{task_id}/cancel",
    )
    assert status == 200
    with Session(engine) as session:
        task = session.get(Task, task_id)
        assert task is not None
        assert task.status == TaskStatus.CANCELLED

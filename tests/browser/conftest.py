"""A live portal on a free port and Chromium (Debian's package) driven by Playwright."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi import FastAPI
from playwright.sync_api import Browser, Page, sync_playwright
from sqlalchemy.engine import Engine

from portal.app import create_app
from portal.plugins import Plugins
from portal.settings import Settings

from processes import serve_in_thread

CHROMIUM = Path(os.environ.get("PAVED_CHROMIUM", "/usr/bin/chromium"))
# Without these, Chromium keeps trying to reach Google's services, which a closed
# network refuses many times a second.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.is_file():
        pytest.skip(f"browser tests need Chromium at {CHROMIUM} (Debian package `chromium`)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@dataclass
class LivePortal:
    url: str
    app: FastAPI


@contextmanager
def _servers(settings: Settings, engine: Engine) -> Iterator[Callable[[Plugins], LivePortal]]:
    with ExitStack() as servers:

        def start(plugins: Plugins) -> LivePortal:
            app = create_app(settings, plugins=plugins, engine=engine)
            return LivePortal(servers.enter_context(serve_in_thread(app)), app)

        yield start


@pytest.fixture
def serve(working_settings: Settings, engine: Engine) -> Iterator[Callable[[Plugins], LivePortal]]:
    """Start the portal (with its task worker) in a thread; stopped after the test."""
    with _servers(working_settings, engine) as start:
        yield start


@pytest.fixture
def serve_demo(
    working_settings: Settings, engine: Engine
) -> Iterator[Callable[[Plugins], LivePortal]]:
    """Like ``serve``, with local demo sign-in on (as `make run` has it)."""
    local = working_settings.auth.local.model_copy(update={"enabled": True})
    auth = working_settings.auth.model_copy(update={"local": local})
    with _servers(working_settings.model_copy(update={"auth": auth}), engine) as start:
        yield start


@pytest.fixture
def page(browser: Browser, admin_headers: dict[str, str]) -> Iterator[Page]:
    """A page whose every request carries a platform admin's API token."""
    context = browser.new_context(extra_http_headers=admin_headers)
    page = context.new_page()
    page.set_default_timeout(10_000)
    yield page
    context.close()


@pytest.fixture
def page_without_js(browser: Browser, admin_headers: dict[str, str]) -> Iterator[Page]:
    context = browser.new_context(java_script_enabled=False, extra_http_headers=admin_headers)
    page = context.new_page()
    page.set_default_timeout(10_000)
    yield page
    context.close()


@pytest.fixture
def fresh_page(browser: Browser) -> Iterator[Page]:
    """A page of a new browser profile: no credentials, no cookies."""
    context = browser.new_context()
    page = context.new_page()
    page.set_default_timeout(10_000)
    yield page
    context.close()

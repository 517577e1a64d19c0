"""Contracts that hold for the whole assembled portal: actions, hooks and their docs."""

import inspect
import re
from collections.abc import Callable
from pathlib import Path

from fastapi import FastAPI
from sqlalchemy.engine import Engine

from portal import hookspecs
from portal.app import create_app
from portal.gate import UNGATED_PATHS, is_ungated, route_action, walk_routes
from portal.plugins import Plugins
from portal.settings import Settings

from conftest import TESTS_DIR

HOOK_NAMES = sorted(name for name in dir(hookspecs) if name.startswith("paved_"))


def _assembled_app(settings: Settings, engine: Engine, install: Callable[..., object]) -> FastAPI:
    install("lineage")  # a third-party plugin, to walk its routes too
    return create_app(settings, plugins=Plugins.discover(), engine=engine)


def test_every_route_declares_a_known_action_or_is_on_the_allowlist(
    settings: Settings, engine: Engine, installed_plugins: Callable[..., object]
) -> None:
    app = _assembled_app(settings, engine, installed_plugins)
    undeclared, unknown = [], []
    routes = list(walk_routes(app.routes))
    assert len(routes) > 15  # the walk reaches into included routers
    for route in routes:
        action = route_action(route)
        if action is None:
            if not is_ungated(route):
                undeclared.append(route.path)
        elif action.name not in app.state.actions:
            unknown.append(f"{route.path} -> {action.name}")
    assert undeclared == []
    assert unknown == []


def test_the_allowlist_is_short_and_every_entry_exists(
    settings: Settings, engine: Engine, installed_plugins: Callable[..., object]
) -> None:
    app = _assembled_app(settings, engine, installed_plugins)
    ungated = {route.path for route in walk_routes(app.routes) if is_ungated(route)}
    assert ungated == UNGATED_PATHS == {"/healthz", "/readyz", "/metrics", "/static"}


def test_every_action_is_named_area_object_verb_and_described(
    settings: Settings, engine: Engine, installed_plugins: Callable[..., object]
) -> None:
    app = _assembled_app(settings, engine, installed_plugins)
    for name, action in app.state.actions.items():
        assert re.fullmatch(r"[a-z_0-9]+\.[a-z_0-9]+\.[a-z_0-9]+", name)
        assert action.description
        assert action.description[0].isupper()


def test_every_hook_has_a_docstring_saying_when_it_is_called_and_what_it_returns() -> None:
    for name in HOOK_NAMES:
        doc = inspect.getdoc(getattr(hookspecs, name)) or ""
        assert "Called" in doc, f"{name}: say when it is called"
        assert "Return" in doc, f"{name}: say what it returns"


def test_every_hook_is_exercised_by_a_test() -> None:
    sources = "\n".join(
        path.read_text() for path in TESTS_DIR.rglob("*.py") if path.name != Path(__file__).name
    )
    untested = [name for name in HOOK_NAMES if name not in sources]
    assert untested == []


def test_plugin_docs_list_every_hook() -> None:
    docs = (TESTS_DIR.parent / "docs" / "plugins.md").read_text()
    assert [name for name in HOOK_NAMES if f"`{name}`" not in docs] == []

"""Contracts that hold for the whole assembled portal: actions, hooks and their docs."""

import inspect
import re
from collections.abc import Callable

from fastapi import FastAPI
from sqlalchemy.engine import Engine

from portal import hookspecs
from portal.app import create_app
from portal.gate import ALLOWLIST, is_ungated, route_action, walk_routes
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
    assert (
        ungated
        == ALLOWLIST
        == {
            "/healthz",
            "/readyz",
            "/metrics",
            "/static",
            "/auth/login",
            "/auth/local",
            "/auth/oidc/callback",
            "/auth/logout",
        }
    )


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


# Which test proves each hook does what its docstring says. A new hook fails the test
# below until it is listed here with a test that exercises it.
HOOK_TESTS = {
    "paved_actions": ("test_plugins", "test_an_action_declared_twice_degrades_the_second_plugin"),
    "paved_routes": ("test_plugins", "test_plugin_contributions_reach_the_app"),
    "paved_nav_items": (
        "test_plugins",
        "test_hooks_that_raise_or_return_the_wrong_type_degrade_only_their_plugin",
    ),
    "paved_entity_tabs": ("test_plugins", "test_plugin_contributions_reach_the_app"),
    "paved_template_dirs": ("test_plugins", "test_plugin_contributions_reach_the_app"),
    "paved_task_handlers": ("test_tasks", "test_a_task_survives_a_restart_of_the_portal"),
    "paved_readiness_checks": ("test_plugins", "test_plugin_contributions_reach_the_app"),
    "paved_cli_commands": ("test_cli", "test_plugins_add_their_own_commands"),
    "paved_startup": ("test_plugins", "test_plugin_contributions_reach_the_app"),
    "paved_shutdown": ("test_plugins", "test_plugin_contributions_reach_the_app"),
    "paved_policy_dirs": (
        "test_policy",
        "test_plugins_add_policy_folders_and_a_broken_one_is_left_out",
    ),
    "paved_policy_context": ("test_gate", "test_plugins_add_facts_the_policy_decides_on"),
    "paved_demo_data": ("test_plugins", "test_demo_data_of_a_failing_plugin_is_rolled_back_alone"),
    "paved_training_backends": (
        "../training/test_jobs",
        "test_a_plugin_adds_a_training_backend_and_a_taken_name_degrades_its_plugin",
    ),
    "paved_serving_runtimes": (
        "../serving/test_deployments",
        "test_a_plugin_adds_a_serving_runtime_and_a_taken_name_degrades_its_plugin",
    ),
    "paved_cost_sources": (
        "../cost/test_usage",
        "test_a_plugin_adds_a_usage_source_and_a_taken_name_degrades_its_plugin",
    ),
    "paved_evidence_collectors": (
        "../soc2/test_exports",
        "test_a_failing_collector_fails_its_controls_not_the_export",
    ),
    "paved_scaffolder_actions": (
        "../scaffolder/test_tasks",
        "test_plugins_add_actions_that_templates_run",
    ),
}


def test_every_hook_is_exercised_by_a_named_test() -> None:
    assert sorted(HOOK_TESTS) == HOOK_NAMES
    for hook, (module, name) in HOOK_TESTS.items():
        source = (TESTS_DIR / "portal" / f"{module}.py").read_text()
        assert f"def {name}(" in source, f"{hook}: {module}.{name} is gone"


def test_plugin_docs_list_every_hook() -> None:
    docs = (TESTS_DIR.parent / "docs" / "plugins.md").read_text()
    assert [name for name in HOOK_NAMES if f"`{name}`" not in docs] == []

"""Plugins: found through entry points, contributing through hooks, contained when broken."""

from collections.abc import Callable

import pytest
from fastapi import APIRouter
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine
from sqlmodel import Session

from portal import NavItem, hot_path, requires
from portal.actions import HOME_READ
from portal.app import create_app
from portal.demo import load_demo_data
from portal.gate import walk_routes
from portal.plugins import Plugins, PluginStatus
from portal.routing import can_overlap
from portal.settings import Settings
from portal.tasks import get_task, list_tasks
from portal.worker import Worker

from conftest import fixture_entry_points
from factories import throwaway_plugin
from fixture_plugins import lineage


def test_the_core_is_found_through_its_entry_point_like_any_plugin(plugins: Plugins) -> None:
    core = plugins.records["core"]
    assert core.target == "portal.plugin"
    assert core.distribution == "paved"
    assert core.version
    assert core.status == PluginStatus.OK
    assert "paved_routes" in core.hooks


def test_installed_distribution_plugins_are_discovered_with_their_version(
    installed_plugins: Callable[..., dict[str, str]],
) -> None:
    installed_plugins("lineage")
    record = Plugins.discover().records["lineage"]
    assert (record.distribution, record.version) == ("paved-fixture-plugins", "1.2.3")
    assert record.status == PluginStatus.OK
    assert record.hooks == sorted(name for name in dir(lineage) if name.startswith("paved_"))


def test_a_plugin_that_fails_to_import_is_reported_and_the_portal_stays_up(
    settings: Settings,
    engine: Engine,
    installed_plugins: Callable[..., dict[str, str]],
    admin_headers: dict[str, str],
) -> None:
    installed_plugins("broken_import", "lineage")
    plugins = Plugins.discover()
    record = plugins.records["broken_import"]
    assert record.status == PluginStatus.FAILED
    assert record.problems == [
        "cannot import fixture_plugins.broken_import: ModuleNotFoundError: "
        "No module named 'paved_lineage_dependency_that_is_not_installed'"
    ]
    app = create_app(settings, plugins=plugins, engine=engine)
    with TestClient(app, headers=admin_headers) as client:
        assert client.get("/api/lineage/edges").status_code == 200
        page = client.get("/admin/plugins")
    assert page.status_code == 200
    assert "broken_import" in page.text
    assert "paved_lineage_dependency_that_is_not_installed" in page.text


def test_hooks_that_raise_or_return_the_wrong_type_degrade_only_their_plugin(
    settings: Settings,
    engine: Engine,
    caplog: pytest.LogCaptureFixture,
    installed_plugins: Callable[..., dict[str, str]],
    admin_headers: dict[str, str],
) -> None:
    installed_plugins("broken_hooks", "lineage")
    plugins = Plugins.discover()
    app = create_app(settings, plugins=plugins, engine=engine)
    with TestClient(app, headers=admin_headers) as client:
        home = client.get("/", headers={"Accept": "text/html"})
    broken = plugins.records["broken_hooks"]
    assert broken.status == PluginStatus.DEGRADED
    assert "paved_nav_items raised RuntimeError: navigation service is down" in broken.problems
    assert "paved_actions returned str; expected a list" in broken.problems
    assert "paved_entity_tabs returned NavItem; expected EntityTab" in broken.problems
    assert "paved_startup raised RuntimeError: cannot warm the cache" in broken.problems
    # The other plugins' contributions are all there.
    assert plugins.records["lineage"].status == PluginStatus.OK
    assert home.status_code == 200
    assert 'href="/lineage"' in home.text
    assert 'href="/tasks"' in home.text
    assert "broken_hooks" in home.text  # the home page says a plugin needs attention
    logged = [r for r in caplog.records if r.name == "paved.plugins" and r.exc_info]
    assert {r.getMessage() for r in logged} >= {
        "plugin broken_hooks failed in paved_nav_items",
        "plugin broken_hooks failed in paved_startup",
    }


def test_a_plugin_implementing_an_unknown_hook_is_refused_whole() -> None:
    plugins = Plugins.discover(found=fixture_entry_points("unknown_hook"))
    record = plugins.records["unknown_hook"]
    assert record.status == PluginStatus.FAILED
    assert "implements unknown hooks paved_route" in record.problems[0]
    assert plugins.manager.get_plugin("unknown_hook") is None


def test_a_route_without_an_action_is_not_served(
    settings: Settings, engine: Engine, admin_headers: dict[str, str]
) -> None:
    plugins = Plugins.discover(found=fixture_entry_points("ungated_route"))
    app = create_app(settings, plugins=plugins, engine=engine)
    with TestClient(app, headers=admin_headers) as client:
        assert client.get("/api/ungated/secrets").status_code == 404
    assert plugins.records["ungated_route"].status == PluginStatus.DEGRADED
    assert plugins.records["ungated_route"].problems == [
        "route /api/ungated/secrets declares no action; expected requires(<action>); "
        "its routes were not added"
    ]


def test_an_action_declared_twice_degrades_the_second_plugin(
    settings: Settings, engine: Engine
) -> None:
    plugins = Plugins.discover(found=fixture_entry_points("lineage"))
    with throwaway_plugin(plugins, "zz_copycat", paved_actions=lambda: [lineage.LINEAGE_READ]):
        app = create_app(settings, plugins=plugins, engine=engine)
        assert app.state.actions["lineage.graph.read"] == lineage.LINEAGE_READ
        assert plugins.records["zz_copycat"].problems == [
            "action lineage.graph.read is already declared by lineage"
        ]


def test_disabled_plugins_are_listed_but_not_loaded(settings: Settings) -> None:
    plugins = Plugins.discover(disabled=["lineage"], found=fixture_entry_points("lineage"))
    assert plugins.records["lineage"].status == PluginStatus.DISABLED
    assert plugins.manager.get_plugin("lineage") is None


def test_plugin_contributions_reach_the_app(
    settings: Settings, engine: Engine, admin_headers: dict[str, str]
) -> None:
    plugins = Plugins.discover(found=fixture_entry_points("lineage"))
    lineage.events.clear()
    app = create_app(settings, plugins=plugins, engine=engine)
    shell = app.state.shell
    assert [tab.id for tab in shell.tabs_for("Model")] == ["lineage", "notes"]
    assert [tab.id for tab in shell.tabs_for("Component")] == ["notes"]
    assert shell.tabs_for("Model")[0].url(kind="Model", namespace="default", name="churn") == (
        "/lineage/model/default/churn"
    )
    assert "lineage.count" in app.state.task_handlers
    with TestClient(app, headers=admin_headers) as client:
        page = client.get("/lineage")
        ready = client.get("/readyz").json()
        created = client.post("/api/lineage/edges")
    assert lineage.events == ["startup", "shutdown"]
    assert page.status_code == 200
    assert "<h1>Lineage</h1>" in page.text
    assert ready["checks"]["lineage-store"]["ok"] is True
    assert created.json() == {"recorded_by": "user:default/test-admin"}


def test_demo_data_is_loaded_once_per_database(settings: Settings, engine: Engine) -> None:
    plugins = Plugins.discover(found=fixture_entry_points("lineage"))
    assert load_demo_data(engine, plugins, settings) is True
    assert load_demo_data(engine, plugins, settings) is False
    with Session(engine) as session:
        demo_tasks = list_tasks(session, kind="lineage.count")
    assert [task.params for task in demo_tasks] == [{"model": "demo"}]
    app = create_app(settings, plugins=plugins, engine=engine)
    Worker(engine, list(app.state.task_handlers.values()), settings.tasks).run_once()
    with Session(engine) as session:
        assert get_task(session, demo_tasks[0].id).result == {"edges": 1}  # type: ignore[arg-type]


def test_demo_data_of_a_failing_plugin_is_rolled_back_alone(
    settings: Settings, engine: Engine
) -> None:
    from portal.models import PortalMeta

    def half_done(session: Session, settings: Settings) -> None:
        session.add(PortalMeta(key="half", value="written before the failure"))
        session.flush()
        raise RuntimeError("demo model file is missing")

    plugins = Plugins.discover(found=fixture_entry_points("lineage"))
    with throwaway_plugin(plugins, "aa_half", paved_demo_data=half_done):
        assert load_demo_data(engine, plugins, settings) is True
        assert plugins.records["aa_half"].status == PluginStatus.DEGRADED
    with Session(engine) as session:
        assert session.get(PortalMeta, "half") is None
        assert [t.kind for t in list_tasks(session)] == ["lineage.count"]


def test_a_malformed_contribution_degrades_its_plugin_and_the_portal_still_starts(
    settings: Settings, engine: Engine, plugins: Plugins, admin_headers: dict[str, str]
) -> None:
    from portal import NavItem

    with throwaway_plugin(
        plugins, "sloppy", paved_nav_items=lambda: [NavItem("X", "/x", order="5")]
    ):  # type: ignore[arg-type]
        app = create_app(settings, plugins=plugins, engine=engine)
        with TestClient(app, headers=admin_headers) as client:
            assert client.get("/", headers={"Accept": "text/html"}).status_code == 200
        assert plugins.records["sloppy"].problems == [
            "paved_nav_items raised TypeError: NavItem.order is '5'; expected an integer"
        ]


def test_hook_ordering_options_are_refused_rather_than_ignored() -> None:
    from types import ModuleType

    from portal.hookspecs import hookimpl
    from portal.plugins import PluginRecord

    plugins = Plugins.discover(found=[])
    eager = ModuleType("eager")

    def paved_nav_items():  # type: ignore[no-untyped-def]
        return []

    eager.paved_nav_items = hookimpl(tryfirst=True)(paved_nav_items)  # type: ignore[attr-defined]
    record = plugins.register(eager, PluginRecord(name="eager", target="tests:eager"))
    assert record.status == PluginStatus.FAILED
    assert record.problems == [
        "uses tryfirst, trylast or wrappers on paved_nav_items; expected plain @hookimpl "
        "(Paved calls plugins in name order)"
    ]


def test_a_plugin_cannot_add_an_ungated_route(
    settings: Settings, engine: Engine, plugins: Plugins, admin_headers: dict[str, str]
) -> None:
    from fastapi import APIRouter

    from portal.gate import ungated

    router = APIRouter()

    @router.get("/metrics/extra")
    @ungated
    def extra() -> dict[str, str]:
        return {"leak": "yes"}

    with throwaway_plugin(plugins, "sneaky", paved_routes=lambda: [router]):
        app = create_app(settings, plugins=plugins, engine=engine)
        with TestClient(app, headers=admin_headers) as client:
            assert client.get("/metrics/extra").status_code == 404
        assert plugins.records["sneaky"].problems == [
            "route /metrics/extra is marked ungated; only the core's own probes may be; "
            "its routes were not added"
        ]


def hot_router(path: str) -> APIRouter:
    router = APIRouter()

    @router.get(path, dependencies=[requires(HOME_READ)])
    def hot() -> dict[str, str]:
        return {"answered_by": "hot"}

    return hot_path(router)


def test_a_router_hot_path_comes_before_every_route_and_answers(
    settings: Settings, engine: Engine, plugins: Plugins, admin_headers: dict[str, str]
) -> None:
    with throwaway_plugin(plugins, "hot", paved_routes=lambda: [hot_router("/hot/{name}/go")]):
        app = create_app(settings, plugins=plugins, engine=engine)
        with TestClient(app, headers=admin_headers) as client:
            answer = client.get("/hot/a/go")
        first = next(walk_routes(app.router.routes[:1]))
        assert plugins.records["hot"].status == PluginStatus.OK
    assert first.path == "/hot/{name}/go"
    # The serving plugin's predictions come next: it marks its router too.
    assert next(walk_routes(app.router.routes[1:2])).path == "/serve/{name}/invocations"
    assert answer.json() == {"answered_by": "hot"}


def test_a_router_hot_path_that_could_shadow_a_route_is_refused(
    settings: Settings, engine: Engine, plugins: Plugins, admin_headers: dict[str, str]
) -> None:
    router = hot_router("/api/auth/{what}")
    with throwaway_plugin(plugins, "shadow", paved_routes=lambda: [router]):
        app = create_app(settings, plugins=plugins, engine=engine)
        with TestClient(app, headers=admin_headers) as client:
            me = client.get("/api/auth/me")
        assert plugins.records["shadow"].problems == [
            "route /api/auth/{what} is marked hot_path but /api/auth/me could answer the "
            "same requests; its routes were not added"
        ]
    assert me.json()["ref"] == "user:default/test-admin"


@pytest.mark.parametrize(
    ("path", "other", "expected"),
    [
        ("/serve/{name}/invocations", "/serving/deployments/{name}", False),
        ("/serve/{name}/invocations", "/serving", False),
        ("/serve/{name}/invocations", "/serve/{name}/other", True),
        ("/serve/{name}/invocations", "/serve/x/invocations", True),
        ("/serve/{name}/invocations", "/{page}", True),
        ("/serve/{name}/invocations", "/", False),
        ("/serve/{name}/invocations", "/static/{path:path}", False),
        ("/healthz", "/healthz", True),
        ("/healthz", "/readyz", False),
        ("/a{b}", "/ab", True),
    ],
)
def test_when_two_route_paths_can_answer_the_same_request(
    path: str, other: str, expected: bool
) -> None:
    assert can_overlap(path, other) is expected
    assert can_overlap(other, path) is expected


def test_a_problem_said_again_of_a_plugin_is_recorded_once() -> None:
    plugins = Plugins.discover(found=fixture_entry_points("lineage"))

    for _ in range(3):
        plugins.degrade("lineage", "scaffolder action lineage:record is already taken")
    plugins.degrade("lineage", "paved_nav_items raised RuntimeError: down")

    assert plugins.records["lineage"].status == PluginStatus.DEGRADED
    assert plugins.records["lineage"].problems == [
        "scaffolder action lineage:record is already taken",
        "paved_nav_items raised RuntimeError: down",
    ]


def test_what_is_built_of_contributions_is_built_once_until_the_plugins_change() -> None:
    plugins = Plugins.discover(found=fixture_entry_points("lineage"))
    builds: list[int] = []

    def build() -> list[str]:
        builds.append(1)
        return [c.item.label for c in plugins.collect("paved_nav_items", NavItem)]

    assert plugins.build_once("nav", build) == ["Lineage"]
    assert plugins.build_once("nav", build) == ["Lineage"]
    assert len(builds) == 1
    with throwaway_plugin(plugins, "extra", paved_nav_items=lambda: [NavItem("X", "/x")]):
        assert plugins.build_once("nav", build) == ["X", "Lineage"]
    assert plugins.build_once("nav", build) == ["Lineage"]
    assert len(builds) == 3

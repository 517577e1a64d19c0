"""Fixtures shared by every test: settings, a migrated database, the app and its client."""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack
from importlib.metadata import EntryPoint
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine
from sqlmodel import Session

from portal import schema
from portal.app import create_app
from portal.auth.tokens import issue_token
from portal.db import create_database_engine
from portal.plugins import Plugins
from portal.settings import Settings, load_settings
from portal.testing import scratch_postgres_database

TESTS_DIR = Path(__file__).parent
REPO_DIR = TESTS_DIR.parent
# Backstage's reference data (example catalog, schemas, OpenAPI documents): the setting
# catalog.backstage_reference, whose default is relative to the repository.
BACKSTAGE_REFERENCE = (
    REPO_DIR / os.environ.get("PAVED_CATALOG__BACKSTAGE_REFERENCE", "../shared/backstage-reference")
).resolve()
POSTGRES_ENV = "PAVED_TEST_DATABASE_URL"
FIXTURE_PLUGINS = {
    "lineage": "fixture_plugins.lineage",
    "broken_import": "fixture_plugins.broken_import",
    "broken_hooks": "fixture_plugins.broken_hooks",
    "unknown_hook": "fixture_plugins.unknown_hook",
    "ungated_route": "fixture_plugins.ungated_route",
}


# Run a test on SQLite and, marked postgres, on PostgreSQL (the `backend` argument).
BOTH_BACKENDS = pytest.mark.parametrize(
    "backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):  # type: ignore[no-untyped-def]
    """In CI (PAVED_CI=1) a skipped test is a failure: nothing may be left unchecked."""
    outcome = yield
    report = outcome.get_result()
    if os.environ.get("PAVED_CI") == "1" and report.skipped and not hasattr(report, "wasxfail"):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else report.longrepr
        report.outcome = "failed"
        report.longrepr = f"skipped in CI, where every test must run: {reason}"


@pytest.fixture(autouse=True)
def _isolated_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No developer's PAVED_* variables or paved.yaml leak into a test."""
    for name in list(os.environ):
        if name.startswith("PAVED_") and name not in {POSTGRES_ENV, "PAVED_CI"}:
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


def _postgres_database() -> Iterator[str]:
    """A fresh, empty PostgreSQL database for one test, dropped afterwards."""
    server = os.environ.get(POSTGRES_ENV)
    if not server:
        pytest.skip(
            f"PostgreSQL tests need {POSTGRES_ENV} (e.g. postgresql://postgres@127.0.0.1:5432/test)"
        )
    with scratch_postgres_database(server, "paved_test") as url:
        yield url


@pytest.fixture
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """SQLite in a temporary folder; a fresh PostgreSQL database for tests marked postgres."""
    if request.node.get_closest_marker("postgres"):
        yield from _postgres_database()
    else:
        yield f"sqlite:///{tmp_path / 'paved.db'}"


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return load_settings(
        database_url=database_url,
        data_dir=tmp_path / "data",
        log_format="text",
        tasks={"in_process_worker": False, "poll_interval": 0.05, "heartbeat_interval": 0.2},
    )


@pytest.fixture(scope="session")
def _empty_mlflow_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An MLflow store with its tables made: creating them takes seconds, copying does not."""
    from portal.tracking import tracking_client

    folder = tmp_path_factory.mktemp("mlflow-template")
    tracking_client(load_settings(data_dir=folder)).search_experiments()
    return folder / "mlflow" / "mlflow.db"


@pytest.fixture
def mlflow_store(settings: Settings, _empty_mlflow_store: Path) -> Path:
    """The test's embedded MLflow store (under its data directory), ready to use."""
    target = settings.mlflow_dir / "mlflow.db"
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(_empty_mlflow_store, target)
    return target


@pytest.fixture
def working_settings(settings: Settings) -> Settings:
    """The test's settings with the in-process task worker on, as `paved up` runs."""
    return settings.model_copy(
        update={"tasks": settings.tasks.model_copy(update={"in_process_worker": True})}
    )


@pytest.fixture
def engine(settings: Settings) -> Iterator[Engine]:
    """The test's database, migrated to head."""
    engine = create_database_engine(settings)
    schema.upgrade(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def session(engine: Engine) -> Iterator[Session]:
    with Session(engine) as session:
        yield session


@pytest.fixture
def installed_plugins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    """Install the fixture plugins as a real distribution with ``paved.plugins`` entry points.

    Returns a function taking the plugin names to install; the distribution lives in a
    temporary folder put on ``sys.path`` (and on ``PYTHONPATH`` for subprocesses).
    """

    def install(*names: str) -> dict[str, str]:
        site = tmp_path / f"site-{uuid.uuid4().hex[:6]}"
        dist_info = site / "paved_fixture_plugins-1.2.3.dist-info"
        dist_info.mkdir(parents=True)
        (dist_info / "METADATA").write_text(
            "Metadata-Version: 2.1\nName: paved-fixture-plugins\nVersion: 1.2.3\n"
        )
        lines = [f"{name} = {FIXTURE_PLUGINS[name]}" for name in names]
        (dist_info / "entry_points.txt").write_text("[paved.plugins]\n" + "\n".join(lines) + "\n")
        monkeypatch.syspath_prepend(str(site))
        monkeypatch.syspath_prepend(str(TESTS_DIR))
        path = os.pathsep.join([str(site), str(TESTS_DIR), os.environ.get("PYTHONPATH", "")])
        monkeypatch.setenv("PYTHONPATH", path)
        return {"PYTHONPATH": path}

    return install


def fixture_entry_points(*names: str) -> list[EntryPoint]:
    return [EntryPoint(name, FIXTURE_PLUGINS[name], "paved.plugins") for name in names]


@pytest.fixture
def plugins() -> Plugins:
    """The plugins installed with Paved itself (found through real entry points)."""
    return Plugins.discover()


@pytest.fixture
def app(settings: Settings, engine: Engine, plugins: Plugins) -> FastAPI:
    return create_app(settings, plugins=plugins, engine=engine)


ADMIN_REF = "user:default/test-admin"


def issue_secret(
    engine: Engine,
    *,
    roles: Sequence[str],
    user: str = ADMIN_REF,
    groups: Sequence[str] = (),
) -> str:
    """A real API token for ``user`` with ``roles``, stored in the test's database."""
    with Session(engine) as session:
        issued = issue_token(
            session, user_ref=user, roles=roles, groups=groups, name="test", created_by="tests"
        )
        session.commit()
    return issued.secret


@pytest.fixture
def admin_headers(engine: Engine) -> dict[str, str]:
    """Headers that sign a request in as a platform admin (a real API token)."""
    secret = issue_secret(engine, roles=["admin"], groups=["group:default/platform"])
    return {"Authorization": f"Bearer {secret}"}


@pytest.fixture
def client(app: FastAPI, admin_headers: dict[str, str]) -> Iterator[TestClient]:
    """A client signed in as a platform admin."""
    with TestClient(app, headers=admin_headers) as client:
        yield client


@pytest.fixture
def anonymous_client(app: FastAPI) -> Iterator[TestClient]:
    """A client nobody signed in with."""
    with TestClient(app) as client:
        yield client


ClientFactory = Callable[..., TestClient]


@pytest.fixture
def client_as(app: FastAPI, engine: Engine) -> Iterator[ClientFactory]:
    """``client_as("ml_engineer", user=..., groups=[...])``: a client with a token for them."""
    with ExitStack() as clients:

        def make(*roles: str, user: str = "user:default/someone", groups: Sequence[str] = ()):  # type: ignore[no-untyped-def]
            secret = issue_secret(engine, roles=roles, user=user, groups=groups)
            client = TestClient(app, headers={"Authorization": f"Bearer {secret}"})
            return clients.enter_context(client)

        yield make


# The people of the ML lifecycle tests: two teams, an engineer and a lead.
ALICE = "user:default/alice"
CAROL = "user:default/carol"
FRAUD = "group:default/fraud"
SEARCH = "group:default/search-ranking"


@pytest.fixture
def alice(client_as: ClientFactory) -> TestClient:
    """An ML engineer of the fraud team."""
    return client_as("ml_engineer", user=ALICE, groups=[FRAUD])


@pytest.fixture
def carol(client_as: ClientFactory) -> TestClient:
    """The fraud team's lead."""
    return client_as("team_lead", user=CAROL, groups=[FRAUD])

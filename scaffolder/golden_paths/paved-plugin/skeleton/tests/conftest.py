"""A real Paved portal for the plugin's tests: a migrated SQLite database in a temporary
folder, Paved's own plugins and this one, and clients signed in with real API tokens."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from importlib import import_module
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from portal import schema
from portal.app import create_app
from portal.auth.tokens import issue_token
from portal.db import create_database_engine
from portal.plugins import PluginRecord, Plugins
from portal.settings import Settings, load_settings
from sqlmodel import Session

PLUGIN = "${{ values.area }}"
MODULE = "${{ values.module }}.plugin"

SignIn = Callable[..., TestClient]


def with_this_plugin(plugins: Plugins) -> Plugins:
    """Paved's installed plugins plus this one: found by its entry point once the package
    is installed (`make install`), registered by hand when the tests run from a checkout."""
    if PLUGIN not in plugins.records:
        plugins.register(import_module(MODULE), PluginRecord(name=PLUGIN, target=MODULE))
    return plugins


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return load_settings(
        database_url=f"sqlite:///{tmp_path / 'paved.db'}",
        data_dir=tmp_path / "data",
        catalog={"file_roots": [str(tmp_path)]},
        tasks={"in_process_worker": False},
    )


@pytest.fixture
def app(settings: Settings) -> Iterator[FastAPI]:
    engine = create_database_engine(settings)
    schema.upgrade(engine)
    yield create_app(settings, plugins=with_this_plugin(Plugins.discover()), engine=engine)
    engine.dispose()


@pytest.fixture
def sign_in(app: FastAPI) -> Iterator[SignIn]:
    """``sign_in("ml_engineer", groups=["group:default/fraud"])``: a client with a real token."""
    clients: list[TestClient] = []

    def signed_in(
        *roles: str, user: str = "user:default/alice", groups: tuple[str, ...] = ()
    ) -> TestClient:
        with Session(app.state.engine) as session:
            issued = issue_token(
                session, user_ref=user, roles=roles, groups=groups, name="tests", created_by="tests"
            )
            session.commit()
        client = TestClient(app, headers={"Authorization": f"Bearer {issued.secret}"})
        clients.append(client.__enter__())
        return client

    yield signed_in
    for client in clients:
        client.__exit__(None, None, None)

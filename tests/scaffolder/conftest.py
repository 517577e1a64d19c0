"""Fixtures of the scaffolder's tests: a template folder the catalog may read, a worker that
runs template runs as the portal's does, and clients for people of two teams."""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine
from sqlmodel import Session

from catalog import service as catalog
from portal.gate import Authority
from portal.settings import Settings
from portal.worker import Worker
from scaffolder import execution

from conftest import ClientFactory

ALICE = "user:default/alice"
FRAUD = "group:default/fraud"


@pytest.fixture
def template_root(tmp_path: Path) -> Path:
    root = tmp_path / "templates"
    root.mkdir()
    return root


@pytest.fixture
def settings(settings: Settings, template_root: Path) -> Settings:
    roots = [template_root, settings.git_root]
    return settings.model_copy(
        update={"catalog": settings.catalog.model_copy(update={"file_roots": roots})}
    )


TemplateMaker = Callable[..., str]


@pytest.fixture
def make_template(template_root: Path, engine: Engine, settings: Settings) -> TemplateMaker:
    """``make_template(name, yaml, files={path: text})``: a template folder, registered."""

    def make(name: str, body: str, files: dict[str, str] | None = None) -> str:
        folder = template_root / name
        for path, text in (files or {}).items():
            (folder / path).parent.mkdir(parents=True, exist_ok=True)
            (folder / path).write_text(textwrap.dedent(text))
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "template.yaml").write_text(textwrap.dedent(body))
        with Session(engine) as session:
            catalog.add_location(
                session,
                "file",
                str(folder / "template.yaml"),
                by="tests",
                settings=settings.catalog,
            )
            session.commit()
        return f"template:default/{name}"

    return make


@pytest.fixture
def worker(app: FastAPI, engine: Engine, settings: Settings) -> Worker:
    """Runs queued template runs, deciding for their authors with the app's policy."""
    return Worker(
        engine,
        [execution.HANDLER],
        settings.tasks,
        portal_settings=settings,
        authority=Authority(
            app.state.policy, app.state.plugins, app.state.engine, app.state.settings
        ),
    )


@pytest.fixture
def alice(client_as: ClientFactory) -> TestClient:
    """An ML engineer of the fraud team."""
    return client_as("ml_engineer", user=ALICE, groups=[FRAUD])

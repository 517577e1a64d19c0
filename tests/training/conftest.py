"""Fixtures of training's tests: a project generated from the classification golden path
through the real scaffolder (published to a git repository, registered in the catalog),
a real MLflow store, and workers that run scaffolder runs and training jobs."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine
from sqlmodel import Session

from catalog import service as catalog
from plugins.training import service as training
from portal.gate import Authority
from portal.settings import Settings
from portal.worker import Worker
from scaffolder import execution
from scaffolder.golden_paths import GOLDEN_PATHS

from conftest import FRAUD, SEARCH, ClientFactory

BOB = "user:default/bob"
PROJECT = "component:default/churn-predictor"


@pytest.fixture
def project_root(tmp_path: Path) -> Path:
    """A folder of projects registered from files (not git repositories)."""
    root = tmp_path / "projects"
    root.mkdir()
    return root


@pytest.fixture
def settings(settings: Settings, project_root: Path) -> Settings:
    roots = [GOLDEN_PATHS, project_root, settings.git_root]
    return settings.model_copy(
        update={"catalog": settings.catalog.model_copy(update={"file_roots": roots})}
    )


@pytest.fixture
def bob(client_as: ClientFactory) -> TestClient:
    """An ML engineer of another team."""
    return client_as("ml_engineer", user=BOB, groups=[SEARCH])


def make_worker(app: FastAPI, engine: Engine, settings: Settings, *handlers: object) -> Worker:
    return Worker(
        engine,
        list(handlers),  # type: ignore[arg-type]
        settings.tasks,
        portal_settings=settings,
        authority=Authority(
            app.state.policy, app.state.plugins, app.state.engine, app.state.settings
        ),
    )


@pytest.fixture
def trainer(app: FastAPI, engine: Engine, settings: Settings) -> Worker:
    """Runs queued training jobs, as the portal's worker does."""
    return make_worker(app, engine, settings, training.HANDLER)


@pytest.fixture
def generated_project(
    app: FastAPI, engine: Engine, settings: Settings, alice: TestClient, mlflow_store: Path
) -> str:
    """The classification golden path, run for alice's team: a git repository with its
    Component, Model and Dataset in the catalog."""
    with Session(engine) as session:
        catalog.add_location(
            session, "file", str(GOLDEN_PATHS / "catalog-info.yaml"), by="tests",
            settings=settings.catalog,
        )  # fmt: skip
        session.commit()
    started = alice.post(
        "/api/scaffolder/v2/tasks",
        json={
            "templateRef": "template:default/classification-model",
            "values": {"name": "churn-predictor", "owner": FRAUD},
        },
    )
    assert started.status_code == 201, started.text
    scaffolder = make_worker(app, engine, settings, execution.HANDLER)
    while scaffolder.run_once():
        pass
    run = alice.get(f"/api/scaffolder/v2/tasks/{started.json()['id']}").json()
    assert run["status"] == "completed", run
    return PROJECT


ProjectMaker = Callable[..., str]


@pytest.fixture
def make_project(project_root: Path, engine: Engine, settings: Settings) -> ProjectMaker:
    """``make_project(name, entrypoint, resources=...)``: a plain folder with a Component and
    its paved-project.yaml, registered from its file."""

    def make(name: str, entrypoint: str, *, memory: str = "1Gi") -> str:
        folder = project_root / name
        folder.mkdir()
        (folder / "catalog-info.yaml").write_text(
            f"apiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata:\n  name: {name}\n"
            f"spec:\n  type: ml-project\n  lifecycle: experimental\n  owner: {FRAUD}\n"
        )
        (folder / "paved-project.yaml").write_text(
            "apiVersion: paved.dev/v1alpha1\nkind: Project\n"
            f"model: {name}\ntraining:\n  entrypoint: {json.dumps(entrypoint)}\n"
            f"  resources: {{cpu: '1', memory: {memory}}}\n  timeoutMinutes: 5\n"
        )
        with Session(engine) as session:
            catalog.add_location(
                session, "file", str(folder / "catalog-info.yaml"), by="tests",
                settings=settings.catalog,
            )  # fmt: skip
            session.commit()
        return f"component:default/{name}"

    return make

"""Fixtures of the cost tests: the demo teams as Groups in the catalog, a worker that
collects usage, and a usage source of the test's own whose figures it sets."""

from __future__ import annotations

import textwrap
from collections.abc import Callable, Iterator
from datetime import date
from pathlib import Path

import pytest
from fastapi import FastAPI
from sqlalchemy.engine import Engine
from sqlmodel import Session

from catalog import service as catalog
from plugins.cost import service
from portal.gate import Authority
from portal.plugins import Plugins
from portal.settings import Settings
from portal.tasks import TaskHandler
from portal.usage import Usage, UsageSource, UsageWindow
from portal.worker import Worker

from conftest import FRAUD, SEARCH
from factories import throwaway_plugin
from training.conftest import make_project, project_root, settings  # noqa: F401

TEAMS_FILE = """\
apiVersion: backstage.io/v1alpha1
kind: Group
metadata:
  name: {name}
  title: {title}
spec:
  type: team
  children: []
"""
PROJECT_FILE = """\
apiVersion: backstage.io/v1alpha1
kind: Component
metadata:
  name: {name}
spec:
  type: ml-project
  lifecycle: production
  owner: {owner}
"""


@pytest.fixture
def teams(project_root: Path, engine: Engine, settings: Settings) -> list[str]:  # noqa: F811
    """The fraud and search-ranking teams, and a project of each, in the catalog."""
    documents = [
        TEAMS_FILE.format(name="fraud", title="Fraud"),
        TEAMS_FILE.format(name="search-ranking", title="Search ranking"),
        PROJECT_FILE.format(name="fraud-pipeline", owner=FRAUD),
        PROJECT_FILE.format(name="search-service", owner=SEARCH),
    ]
    path = project_root / "teams.yaml"
    path.write_text("---\n".join(textwrap.dedent(document) for document in documents))
    with Session(engine) as session:
        catalog.add_location(session, "file", str(path), by="tests", settings=settings.catalog)
        session.commit()
    return [FRAUD, SEARCH]


class Meter:
    """A usage source whose figures a test sets: ``meter.usage`` is what it reports."""

    def __init__(self, name: str = "meter", metrics: dict[str, str] | None = None) -> None:
        self.usage: list[Usage] = []
        self.fails: str | None = None
        self.windows: list[UsageWindow] = []
        self.source = UsageSource(
            name=name,
            description="The test's own meter",
            metrics=metrics or {"gpu_hours": "GPU-hours", "cpu_hours": "CPU-hours"},
            collect=self._collect,
        )

    def _collect(self, window: UsageWindow) -> list[Usage]:
        self.windows.append(window)
        if self.fails:
            raise RuntimeError(self.fails)
        return [found for found in self.usage if window.start <= found.day <= window.end]


@pytest.fixture
def meter(plugins: Plugins) -> Iterator[Meter]:
    """A plugin contributing the test's meter, registered for the test only."""
    found = Meter()
    with throwaway_plugin(plugins, "meter", paved_cost_sources=lambda: [found.source]):
        yield found


@pytest.fixture
def collector(app: FastAPI, engine: Engine, settings: Settings) -> Worker:  # noqa: F811
    """Runs queued collections, as the portal's worker does."""
    return Worker(
        engine,
        [TaskHandler(service.TASK_KIND, service.run_collection, title="Usage collection")],
        settings.tasks,
        portal_settings=settings,
        authority=Authority(app.state.policy, app.state.plugins, engine, app.state.settings),
    )


Collect = Callable[[date, date], int]


@pytest.fixture
def collect(engine: Engine, collector: Worker) -> Collect:
    """``collect(start, end)``: queue a collection, run it, return its task id."""

    def run(start: date, end: date) -> int:
        with Session(engine) as session:
            task = service.start_collection(session, start, end, by="tests")
            session.commit()
            assert task.id is not None
        assert collector.run_once()
        return task.id

    return run

"""Fixtures of the catalog's tests: a folder `file` locations may be registered from, and
Paved's demo catalog loaded."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine
from sqlmodel import Session

from catalog import service
from portal.settings import Settings


@pytest.fixture
def repos(tmp_path: Path) -> Path:
    """The folder `file` locations may be registered from (``catalog.file_roots``)."""
    roots = tmp_path / "repos"
    roots.mkdir()
    return roots


@pytest.fixture
def settings(settings: Settings, repos: Path) -> Settings:
    return settings.model_copy(
        update={"catalog": settings.catalog.model_copy(update={"file_roots": [repos]})}
    )


@pytest.fixture
def demo(engine: Engine, settings: Settings) -> None:
    """Paved's demo catalog, registered and read."""
    with Session(engine) as session:
        service.register_demo(session, settings.catalog)
        session.commit()


@pytest.fixture
def catalog(client: TestClient, demo: None) -> TestClient:
    """An admin's client on the demo catalog."""
    return client

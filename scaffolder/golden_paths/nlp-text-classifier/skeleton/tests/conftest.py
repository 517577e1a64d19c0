"""One MLflow tracking store for the whole test session: creating one takes seconds."""

from __future__ import annotations

from dataclasses import dataclass

import mlflow
import pytest


@dataclass(frozen=True)
class Tracking:
    uri: str
    artifacts: str


@pytest.fixture(scope="session")
def tracking(tmp_path_factory: pytest.TempPathFactory) -> Tracking:
    root = tmp_path_factory.mktemp("mlflow")
    store = Tracking(f"sqlite:///{root / 'mlflow.db'}", (root / "artifacts").as_uri())
    mlflow.set_tracking_uri(store.uri)
    return store

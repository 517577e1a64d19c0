"""One MLflow tracking store and one trained model for the whole test session: making each
takes seconds. Each test gets a new service (so, new metrics) around the one loaded model."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import mlflow
import pytest
from fastapi.testclient import TestClient

from ${{ values.package }}.model import ServedModel, load_model
from ${{ values.package }}.service import DEFAULT_MODEL_URI, build_app
from ${{ values.package }}.train import Trained, train


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


@pytest.fixture(scope="session")
def trained(tracking: Tracking) -> Trained:
    """The sample's model, registered and made the champion: what the service serves."""
    return train(champion=True, tracking_uri=tracking.uri, artifact_location=tracking.artifacts)


@pytest.fixture(scope="session")
def champion(trained: Trained) -> ServedModel:
    return load_model(DEFAULT_MODEL_URI)


@pytest.fixture
def client(champion: ServedModel) -> Iterator[TestClient]:
    with TestClient(build_app(champion)) as client:
        yield client

"""One MLflow tracking store for the whole test session: creating one takes seconds. In it,
the stand-in model, registered as the champion the job scores with by default."""

from __future__ import annotations

from dataclasses import dataclass

import mlflow
import pytest

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
def champion(tracking: Tracking) -> Trained:
    return train(tracking_uri=tracking.uri, artifact_location=tracking.artifacts)

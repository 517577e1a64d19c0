"""Fixtures of the registry's tests: a Model entity owned by the fraud team, runs that logged
real scikit-learn models to the test's MLflow store, and people of two teams."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine
from sqlmodel import Session

from catalog import service as catalog
from portal.settings import Settings

from conftest import FRAUD, SEARCH, ClientFactory

DAVE = "user:default/dave"
MODEL = "churn"


@pytest.fixture
def entity_root(tmp_path: Path) -> Path:
    root = tmp_path / "entities"
    root.mkdir()
    return root


@pytest.fixture
def settings(settings: Settings, entity_root: Path) -> Settings:
    catalog_settings = settings.catalog.model_copy(update={"file_roots": [entity_root]})
    return settings.model_copy(update={"catalog": catalog_settings})


@pytest.fixture
def model_entity(entity_root: Path, engine: Engine, settings: Settings) -> str:
    (entity_root / "catalog-info.yaml").write_text(
        "apiVersion: paved.dev/v1alpha1\nkind: Model\nmetadata:\n  name: churn\n"
        "  description: Predicts which customers leave.\nspec:\n  type: classification\n"
        f"  lifecycle: production\n  owner: {FRAUD}\n  registeredModel: {MODEL}\n"
        "  framework: scikit-learn\n"
    )
    with Session(engine) as session:
        catalog.add_location(
            session, "file", str(entity_root / "catalog-info.yaml"), by="tests",
            settings=settings.catalog,
        )  # fmt: skip
        session.commit()
    return "model:default/churn"


LogRun = Callable[..., str]


@pytest.fixture
def log_run(settings: Settings, mlflow_store: Path) -> LogRun:
    """``log_run(C=1.0)``: an MLflow run with a fitted model, lineage tags and a metric."""
    import mlflow
    import numpy as np
    from sklearn.linear_model import LogisticRegression

    from portal.tracking import ensure_experiment, tracking_client

    def log(c: float = 1.0, *, with_model: bool = True) -> str:
        experiment = ensure_experiment(settings, MODEL)
        client = tracking_client(settings)
        tags = {
            "mlflow.source.git.commit": "0123456789abcdef",
            "paved.trained_on": "dataset:default/customers",
        }
        run = client.create_run(experiment, tags=tags)
        mlflow.set_tracking_uri(settings.tracking_uri)
        with mlflow.start_run(run_id=run.info.run_id):
            mlflow.log_param("C", c)
            mlflow.log_metric("accuracy", 0.9)
            if with_model:
                x = np.array([[0.0, 1.0], [1.0, 0.0], [0.5, 0.5], [0.9, 0.1]])
                model = LogisticRegression(C=c).fit(x, [0, 1, 0, 1])
                mlflow.sklearn.log_model(
                    model, name="model", pip_requirements=["scikit-learn"], input_example=x[:1]
                )
        return str(run.info.run_id)

    return log


@pytest.fixture
def dave(client_as: ClientFactory) -> TestClient:
    """Another team's lead."""
    return client_as("team_lead", user=DAVE, groups=[SEARCH])

"""Fixtures of the deployment tests: a project folder with its Component, Model and training
Dataset in the catalog, versions of a real scikit-learn model (and of a model that always
fails) registered in the test's MLflow store, a worker that runs serving tasks, and people
of two teams."""

from __future__ import annotations

import random
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from kubernetes_api import FakeApiServer
from sqlalchemy.engine import Engine
from sqlmodel import Session

from catalog import service as catalog
from plugins.registry import service as registry
from plugins.serving import apply
from plugins.serving.local import stop_servers
from portal.gate import Authority
from portal.settings import Settings
from portal.worker import Worker

from conftest import ALICE, CAROL, FRAUD, SEARCH, ClientFactory

DAVE = "user:default/dave"
MODEL = "churn"
FEATURES = ("amount", "items")
# A model that raises on every prediction: logged as code, so its server needs nothing of
# the tests to load it.
BROKEN_MODEL = """
import mlflow


class Broken(mlflow.pyfunc.PythonModel):
    def predict(self, context, model_input, params=None):
        raise RuntimeError("this version is broken")


mlflow.models.set_model(Broken())
"""


@pytest.fixture
def project_root(tmp_path: Path) -> Path:
    root = tmp_path / "projects"
    root.mkdir()
    return root


@pytest.fixture
def settings(settings: Settings, project_root: Path) -> Settings:
    catalog_settings = settings.catalog.model_copy(update={"file_roots": [project_root]})
    serving = settings.serving.model_copy(
        update={"start_timeout": 60.0, "min_canary_requests": 10, "drift_sample_every": 1}
    )
    return settings.model_copy(update={"catalog": catalog_settings, "serving": serving})


def training_rows(count: int = 300, *, seed: int = 7, shift: float = 0.0) -> list[list[float]]:
    draws = random.Random(seed)
    return [
        [round(draws.gauss(50 + shift, 10), 2), float(draws.randint(1, 5))] for _ in range(count)
    ]


@pytest.fixture
def project(project_root: Path, engine: Engine, settings: Settings) -> Path:
    """The churn project: a Component, its Model (trained on churn-train) and the Dataset,
    whose classification carol approved, with monitoring configured."""
    folder = project_root / "churn"
    (folder / "data").mkdir(parents=True)
    rows = training_rows()
    (folder / "data" / "train.csv").write_text(
        "amount,items,label\n" + "".join(f"{a},{i},{int(a > 50)}\n" for a, i in rows)
    )
    (folder / "catalog-info.yaml").write_text(
        textwrap.dedent(
            f"""\
            apiVersion: backstage.io/v1alpha1
            kind: Component
            metadata:
              name: churn
            spec:
              type: ml-project
              lifecycle: production
              owner: {FRAUD}
            ---
            apiVersion: paved.dev/v1alpha1
            kind: Model
            metadata:
              name: churn
            spec:
              type: classification
              lifecycle: production
              owner: {FRAUD}
              registeredModel: {MODEL}
              trainedOn: [dataset:default/churn-train]
              framework: scikit-learn
            ---
            apiVersion: paved.dev/v1alpha1
            kind: Dataset
            metadata:
              name: churn-train
              annotations:
                paved.dev/classification-approved-by: {CAROL}
            spec:
              owner: {FRAUD}
              lifecycle: production
              location: data/train.csv
              format: csv
              classification: internal
            """
        )
    )
    (folder / "paved-project.yaml").write_text(
        textwrap.dedent(
            f"""\
            apiVersion: paved.dev/v1alpha1
            kind: Project
            model: {MODEL}
            training:
              entrypoint: python train.py
            serving:
              mode: online
              runtime: local
              canary:
                percent: 10
                maxErrorRate: 0.2
                maxP99Ms: 5000
            monitoring:
              enabled: true
              maxErrorRate: 0.05
              maxP99Ms: 1000
              driftThreshold: 0.2
            """
        )
    )
    with Session(engine) as session:
        catalog.add_location(
            session, "file", str(folder / "catalog-info.yaml"), by="tests",
            settings=settings.catalog,
        )  # fmt: skip
        session.commit()
    return folder


Register = Callable[..., str]


@pytest.fixture
def register(settings: Settings, mlflow_store: Path, tmp_path: Path) -> Register:
    """``register()``: a new version of churn from a fitted model, registered by alice;
    ``register(broken=True)``: one that fails every prediction. Returns the version."""
    import mlflow
    import numpy as np
    import pandas as pd
    from mlflow.models import infer_signature
    from sklearn.linear_model import LogisticRegression

    from portal.tracking import ensure_experiment, register_model, tracking_client

    def make(*, broken: bool = False, by: str = ALICE) -> str:
        experiment = ensure_experiment(settings, MODEL)
        client = tracking_client(settings)
        run = client.create_run(
            experiment, tags={"paved.trained_on": "dataset:default/churn-train"}
        )
        mlflow.set_tracking_uri(settings.tracking_uri)
        with mlflow.start_run(run_id=run.info.run_id):
            mlflow.log_metric("accuracy", 0.9)
            if broken:
                code = tmp_path / "broken_model.py"
                code.write_text(BROKEN_MODEL)
                mlflow.pyfunc.log_model(name="model", python_model=str(code), pip_requirements=[])
            else:
                rows = np.array(training_rows(60))
                labels = (rows[:, 0] > 50).astype(int)
                fitted = LogisticRegression().fit(rows, labels)
                # A signature names the features (an input example would too, but MLflow turns
                # it into JSON in a way pandas deprecates).
                frame = pd.DataFrame(rows, columns=list(FEATURES))
                signature = infer_signature(frame, fitted.predict(rows))
                mlflow.sklearn.log_model(
                    fitted, name="model", pip_requirements=["scikit-learn"], signature=signature
                )
        tags = {registry.REGISTERED_BY: by}
        found = register_model(settings, f"runs:/{run.info.run_id}/model", MODEL, tags=tags)
        return str(found.version)

    return make


@pytest.fixture
def approve(engine: Engine) -> Callable[[str], None]:
    """Record carol's approval of a version, as the registry's API does."""
    from plugins.registry.models import ModelApproval

    def approve(version: str) -> None:
        with Session(engine) as session:
            session.add(
                ModelApproval(
                    model=MODEL, version=version, decision="approved",
                    requested_by=ALICE, decided_by=CAROL,
                )
            )  # fmt: skip
            session.commit()

    return approve


@pytest.fixture
def deployer(app: FastAPI, engine: Engine, settings: Settings) -> Iterator[Worker]:
    """Runs queued serving tasks, as the portal's worker does; its model servers stop after
    the test."""
    worker = Worker(
        engine,
        [apply.HANDLER],
        settings.tasks,
        portal_settings=settings,
        authority=Authority(
            app.state.policy, app.state.plugins, app.state.engine, app.state.settings
        ),
    )
    try:
        yield worker
    finally:
        stop_servers(settings)


def run_tasks(worker: Worker) -> int:
    ran = 0
    while worker.run_once():
        ran += 1
    return ran


@pytest.fixture
def dave(client_as: ClientFactory) -> TestClient:
    """Another team's ML engineer... with the data scientist's role only."""
    return client_as("data_scientist", user=DAVE, groups=[SEARCH])


@pytest.fixture
def api_server() -> Iterator[FakeApiServer]:
    """A fake Kubernetes API server holding the kinds the serving runtime sends."""
    with FakeApiServer(
        (
            "serving.kserve.io/v1beta1/inferenceservices",
            "apps/v1/deployments",
            "v1/services",
            "autoscaling/v2/horizontalpodautoscalers",
        )
    ) as server:
        yield server

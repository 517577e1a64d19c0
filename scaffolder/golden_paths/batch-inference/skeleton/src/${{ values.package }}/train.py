"""A stand-in model to score with until the real one is registered: a small classifier trained
on synthetic transactions, registered as ``${{ values.name }}`` with the alias ``champion``.

The real model comes from its training project, which registers versions under the same name;
this one lets the job run, in a demo and in the tests, before there is one.
"""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass
from importlib.metadata import version

import mlflow
import numpy as np
import pandas as pd
from mlflow.models import infer_signature
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from ${{ values.package }}.model import NAME

# What the logged model needs to load, pinned to the versions that trained it. Naming them
# spares MLflow from finding them by loading the model in a subprocess, which takes seconds.
REQUIREMENTS = [f"{name}=={version(name)}" for name in ("mlflow", "scikit-learn", "skops")]


@dataclass(frozen=True)
class Trained:
    run_id: str
    version: str
    model_uri: str  # models:/<name>@<alias>


def synthetic_transactions(rows: int, *, seed: int) -> tuple[pd.DataFrame, np.ndarray]:
    """Transactions with the columns of data/input/, and whether each was fraud: large
    amounts from young accounts at night mostly were."""
    rng = np.random.default_rng(seed)
    features = pd.DataFrame(
        {
            "amount": rng.gamma(2.0, 50.0, rows).round(2),
            "account_age_days": rng.integers(0, 2000, rows),
            "items": rng.integers(1, 12, rows),
            "night_time": rng.integers(0, 2, rows),
        }
    )
    risk = (
        0.02 * features["amount"]
        - 0.002 * features["account_age_days"]
        + 1.5 * features["night_time"]
        - 0.5
    )
    labels = (risk + rng.normal(0.0, 0.5, rows) > 0).astype(int).to_numpy()
    return features, labels


def train(
    *,
    alias: str = "champion",
    rows: int = 500,
    seed: int = 42,
    tracking_uri: str | None = None,
    artifact_location: str | None = None,
) -> Trained:
    """Train, log and register one version, and point ``alias`` at it."""
    default = os.environ.get("MLFLOW_TRACKING_URI") or "sqlite:///mlflow.db"
    mlflow.set_tracking_uri(tracking_uri or default)
    if mlflow.get_experiment_by_name(NAME) is None:
        mlflow.create_experiment(NAME, artifact_location=artifact_location)
    mlflow.set_experiment(NAME)
    features, labels = synthetic_transactions(rows, seed=seed)
    with mlflow.start_run() as run:
        model = Pipeline([("scale", StandardScaler()), ("model", LogisticRegression())])
        model.fit(features, labels)
        mlflow.log_params({"rows": rows, "seed": seed, "data": "synthetic"})
        mlflow.log_metric("train_accuracy", float(model.score(features, labels)))
        logged = mlflow.sklearn.log_model(
            model,
            name="model",
            # The signature names the input columns: the job checks every file against it.
            signature=infer_signature(features, model.predict(features)),
            pip_requirements=REQUIREMENTS,
            registered_model_name=NAME,
        )
    registered = str(logged.registered_model_version)
    mlflow.MlflowClient().set_registered_model_alias(NAME, alias, registered)
    return Trained(run.info.run_id, registered, f"models:/{NAME}@{alias}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--alias", default="champion")
    parser.add_argument("--seed", type=int, default=42)
    options = parser.parse_args()
    trained = train(alias=options.alias, seed=options.seed)
    print(f"run {trained.run_id}: registered version {trained.version} as {trained.model_uri}")


if __name__ == "__main__":
    main()

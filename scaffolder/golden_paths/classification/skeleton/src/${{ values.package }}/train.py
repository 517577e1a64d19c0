"""Train the classifier on a CSV of features and a 0/1 ``label`` column, and log the run
(parameters, metrics and model) to MLflow."""

from __future__ import annotations

import argparse
import csv
import os
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path

import mlflow
import numpy as np
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, f1_score, roc_auc_score
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

NAME = "${{ values.name }}"
ALGORITHM = "${{ values.algorithm }}"
SAMPLE = Path(__file__).resolve().parents[2] / "data" / "sample.csv"
LABEL = "label"
TRUSTED_TYPES = ["sklearn.tree._tree.Tree"]
# What the logged model needs to load, pinned to the versions that trained it. Naming them
# spares MLflow from finding them by loading the model in a subprocess, which takes seconds.
REQUIREMENTS = [f"{name}=={version(name)}" for name in ("mlflow", "scikit-learn", "skops")]


@dataclass(frozen=True)
class Trained:
    run_id: str
    metrics: dict[str, float]
    model_uri: str


def load(path: Path) -> tuple[list[str], np.ndarray, np.ndarray]:
    """The feature names, the features and the labels of a CSV."""
    with path.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    if not rows or LABEL not in rows[0]:
        raise ValueError(f"{path} has no rows with a {LABEL!r} column")
    features = [name for name in rows[0] if name != LABEL]
    x = np.array([[float(row[name]) for name in features] for row in rows])
    y = np.array([int(row[LABEL]) for row in rows])
    return features, x, y


def build(algorithm: str, seed: int) -> Pipeline:
    if algorithm == "random-forest":
        estimator = RandomForestClassifier(n_estimators=200, max_depth=6, random_state=seed)
    else:
        estimator = LogisticRegression(max_iter=1000)
    return Pipeline([("scale", StandardScaler()), ("model", estimator)])


def train(
    data: Path = SAMPLE,
    *,
    algorithm: str = ALGORITHM,
    seed: int = 42,
    tracking_uri: str | None = None,
    artifact_location: str | None = None,
) -> Trained:
    """One training run, logged to MLflow; returns its id, metrics and model URI."""
    default = os.environ.get("MLFLOW_TRACKING_URI") or "sqlite:///mlflow.db"
    mlflow.set_tracking_uri(tracking_uri or default)
    if mlflow.get_experiment_by_name(NAME) is None:
        mlflow.create_experiment(NAME, artifact_location=artifact_location)
    mlflow.set_experiment(NAME)
    features, x, y = load(data)
    x_train, x_test, y_train, y_test = train_test_split(
        x, y, test_size=0.25, random_state=seed, stratify=y
    )
    with mlflow.start_run() as run:
        mlflow.log_params(
            {"algorithm": algorithm, "seed": seed, "rows": len(y), "features": ",".join(features)}
        )
        model = build(algorithm, seed).fit(x_train, y_train)
        scores = model.predict_proba(x_test)[:, 1]
        predicted = (scores >= 0.5).astype(int)
        metrics = {
            "accuracy": float(accuracy_score(y_test, predicted)),
            "f1": float(f1_score(y_test, predicted)),
            "roc_auc": float(roc_auc_score(y_test, scores)),
        }
        mlflow.log_metrics(metrics)
        logged = mlflow.sklearn.log_model(
            model,
            name="model",
            input_example=x_train[:3],
            pip_requirements=REQUIREMENTS,
            # Trees are stored as raw node arrays; this run made them, so they are trusted.
            skops_trusted_types=TRUSTED_TYPES if algorithm == "random-forest" else None,
        )
    return Trained(run.info.run_id, metrics, logged.model_uri)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", type=Path, default=SAMPLE)
    parser.add_argument(
        "--algorithm", choices=["logistic-regression", "random-forest"], default=ALGORITHM
    )
    parser.add_argument("--seed", type=int, default=42)
    options = parser.parse_args()
    trained = train(options.data, algorithm=options.algorithm, seed=options.seed)
    shown = ", ".join(f"{name} {value:.3f}" for name, value in trained.metrics.items())
    print(f"run {trained.run_id}: {shown}; model {trained.model_uri}")


if __name__ == "__main__":
    main()

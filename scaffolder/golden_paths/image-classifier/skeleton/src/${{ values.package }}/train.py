"""Train the image classifier on scikit-learn's 8x8 digits, and log the run (parameters,
metrics, confusion matrix and model) to MLflow."""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass
from importlib.metadata import version

import mlflow
import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, confusion_matrix, f1_score
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC

from ${{ values.package }}.images import load

NAME = "${{ values.name }}"
ALGORITHM = "${{ values.algorithm }}"
ALGORITHMS = ("svm", "logistic-regression")
CONFUSION_MATRIX = "confusion_matrix.csv"
# What the logged model needs to load, pinned to the versions that trained it. Naming them
# spares MLflow from finding them by loading the model in a subprocess, which takes seconds.
REQUIREMENTS = [f"{name}=={version(name)}" for name in ("mlflow", "scikit-learn", "skops")]


@dataclass(frozen=True)
class Trained:
    run_id: str
    metrics: dict[str, float]
    model_uri: str


def build(algorithm: str) -> Pipeline:
    """Standardised pixels, then an SVM with an RBF kernel or a logistic regression."""
    if algorithm == "svm":
        estimator: SVC | LogisticRegression = SVC()
    elif algorithm == "logistic-regression":
        estimator = LogisticRegression(max_iter=2000)
    else:
        expected = ", ".join(ALGORITHMS)
        raise ValueError(f"unknown algorithm {algorithm!r}; expected one of {expected}")
    return Pipeline([("scale", StandardScaler()), ("model", estimator)])


def confusion_table(truth: np.ndarray, predicted: np.ndarray) -> str:
    """The confusion matrix as CSV: a row per true digit, a column per predicted one, so what
    lies off the diagonal shows which digits the model takes for which."""
    labels = np.unique(truth)
    matrix = confusion_matrix(truth, predicted, labels=labels)
    header = ["true", *(f"predicted {label}" for label in labels)]
    rows = [
        [str(label), *(str(count) for count in counts)]
        for label, counts in zip(labels, matrix, strict=True)
    ]
    return "\n".join(",".join(row) for row in [header, *rows]) + "\n"


def train(
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
    x, y = load()
    x_train, x_test, y_train, y_test = train_test_split(
        x, y, test_size=0.25, random_state=seed, stratify=y
    )
    with mlflow.start_run() as run:
        mlflow.log_params({"algorithm": algorithm, "seed": seed, "images": len(y)})
        model = build(algorithm).fit(x_train, y_train)
        predicted = model.predict(x_test)
        metrics = {
            "accuracy": float(accuracy_score(y_test, predicted)),
            "macro_f1": float(f1_score(y_test, predicted, average="macro")),
        }
        mlflow.log_metrics(metrics)
        mlflow.log_text(confusion_table(y_test, predicted), CONFUSION_MATRIX)
        logged = mlflow.sklearn.log_model(
            model,
            name="model",
            input_example=x_train[:3],
            pip_requirements=REQUIREMENTS,
        )
    return Trained(run.info.run_id, metrics, logged.model_uri)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--algorithm", choices=ALGORITHMS, default=ALGORITHM)
    parser.add_argument("--seed", type=int, default=42)
    options = parser.parse_args()
    trained = train(algorithm=options.algorithm, seed=options.seed)
    shown = ", ".join(f"{name} {value:.3f}" for name, value in trained.metrics.items())
    print(f"run {trained.run_id}: {shown}; model {trained.model_uri}")


if __name__ == "__main__":
    main()

"""Train the model the service serves on a CSV of features and a ``minutes`` column, and log
the run (parameters, metrics and model, with its signature) to MLflow."""

from __future__ import annotations

import argparse
import os
import warnings
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path

import mlflow
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import Ridge
from sklearn.metrics import mean_absolute_error, r2_score
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

NAME = "${{ values.name }}"
SAMPLE = Path(__file__).resolve().parents[2] / "data" / "sample.csv"
TARGET = "minutes"
CHAMPION = "champion"
# What the logged model needs to load, pinned to the versions that trained it. Naming them
# spares MLflow from finding them by loading the model in a subprocess, which takes seconds.
REQUIREMENTS = [
    f"{name}=={version(name)}" for name in ("mlflow", "pandas", "scikit-learn", "skops")
]


@dataclass(frozen=True)
class Trained:
    run_id: str
    metrics: dict[str, float]
    model_uri: str
    version: str | None  # the registered version, when the run registered one


def load(path: Path) -> tuple[pd.DataFrame, pd.Series]:
    """The features and the target of a CSV; the features keep their column types, which
    become the model's signature and so the service's request fields."""
    frame = pd.read_csv(path)
    if TARGET not in frame.columns:
        raise ValueError(f"{path} has no {TARGET!r} column")
    return frame.drop(columns=TARGET), frame[TARGET]


def build(features: pd.DataFrame, alpha: float) -> Pipeline:
    """Scaled numbers, one-hot categories (unseen ones ignored) and a ridge regression."""
    numbers = features.select_dtypes("number").columns.tolist()
    categories = features.select_dtypes(["object", "string"]).columns.tolist()
    prepare = ColumnTransformer(
        [
            ("numbers", StandardScaler(), numbers),
            ("categories", OneHotEncoder(handle_unknown="ignore"), categories),
        ],
        remainder="passthrough",  # booleans go in as they are
    )
    return Pipeline([("prepare", prepare), ("model", Ridge(alpha=alpha))])


def train(
    data: Path = SAMPLE,
    *,
    alpha: float = 1.0,
    seed: int = 42,
    champion: bool = False,
    tracking_uri: str | None = None,
    artifact_location: str | None = None,
) -> Trained:
    """One training run, logged to MLflow. With ``champion``, the model is also registered
    as ``NAME`` and its new version becomes the champion, the version the service loads."""
    default = os.environ.get("MLFLOW_TRACKING_URI") or "sqlite:///mlflow.db"
    mlflow.set_tracking_uri(tracking_uri or default)
    if mlflow.get_experiment_by_name(NAME) is None:
        mlflow.create_experiment(NAME, artifact_location=artifact_location)
    mlflow.set_experiment(NAME)
    x, y = load(data)
    x_train, x_test, y_train, y_test = train_test_split(x, y, test_size=0.25, random_state=seed)
    with mlflow.start_run() as run:
        mlflow.log_params(
            {"alpha": alpha, "seed": seed, "rows": len(y), "features": ",".join(x.columns)}
        )
        model = build(x, alpha).fit(x_train, y_train)
        predicted = model.predict(x_test)
        metrics = {
            "mae": float(mean_absolute_error(y_test, predicted)),
            "r2": float(r2_score(y_test, predicted)),
        }
        mlflow.log_metrics(metrics)
        with warnings.catch_warnings():
            # MLflow warns that integer columns cannot hold missing values; counts like
            # ``items`` never miss, and the service should ask for whole numbers.
            warnings.filterwarnings("ignore", message="Hint: Inferred schema contains integer")
            logged = mlflow.sklearn.log_model(
                model,
                name="model",
                input_example=x_train.head(3),
                pip_requirements=REQUIREMENTS,
                registered_model_name=NAME if champion else None,
            )
    registered = logged.registered_model_version
    if registered is not None:
        mlflow.MlflowClient().set_registered_model_alias(NAME, CHAMPION, registered)
    return Trained(
        run.info.run_id,
        metrics,
        logged.model_uri,
        str(registered) if registered is not None else None,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", type=Path, default=SAMPLE)
    parser.add_argument("--alpha", type=float, default=1.0, help="the ridge penalty")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument(
        "--champion",
        action="store_true",
        help=f"register the model and make it the {CHAMPION}, the version the service loads",
    )
    options = parser.parse_args()
    trained = train(options.data, alpha=options.alpha, seed=options.seed, champion=options.champion)
    shown = ", ".join(f"{name} {value:.3f}" for name, value in trained.metrics.items())
    print(f"run {trained.run_id}: {shown}; model {trained.model_uri}")
    if trained.version:
        print(f"models:/{NAME}@{CHAMPION} is now version {trained.version}")


if __name__ == "__main__":
    main()

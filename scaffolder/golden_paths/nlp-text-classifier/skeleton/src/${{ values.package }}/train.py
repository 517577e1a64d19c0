"""Train the text classifier on a CSV of ``text`` and ``label`` columns, and log the run
(parameters, metrics and model) to MLflow."""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path

import mlflow
from sklearn.compose import ColumnTransformer
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, f1_score
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline

from ${{ values.package }}.texts import LABEL, SAMPLE, TEXT, load

NAME = "${{ values.name }}"
WORD_NGRAMS = (1, 2)
CHAR_NGRAMS = (2, 5)
# Inverse regularisation strength: TF-IDF features are many and small, and a weaker penalty
# than the default 1.0 usually suits them. Tune it on real data.
C = 10.0
# What the logged model needs to load, pinned to the versions that trained it. Naming them
# spares MLflow from finding them by loading the model in a subprocess, which takes seconds.
REQUIREMENTS = [f"{name}=={version(name)}" for name in ("mlflow", "scikit-learn", "skops")]


@dataclass(frozen=True)
class Trained:
    run_id: str
    metrics: dict[str, float]
    model_uri: str


def build() -> Pipeline:
    """TF-IDF of word and character n-grams, then a logistic regression.

    Words carry the topic ("refund", "parcel"); character n-grams still match a word that
    is misspelt or inflected ("refunded", "pasword"). The pipeline reads the ``text`` column
    of a DataFrame, as the served model receives it.
    """
    features = ColumnTransformer(
        [
            ("words", TfidfVectorizer(ngram_range=WORD_NGRAMS, sublinear_tf=True), TEXT),
            (
                "chars",
                TfidfVectorizer(
                    analyzer="char_wb", ngram_range=CHAR_NGRAMS, sublinear_tf=True, min_df=2
                ),
                TEXT,
            ),
        ]
    )
    # newton-cg takes a few exact steps where the default lbfgs takes many on sparse features.
    classifier = LogisticRegression(C=C, solver="newton-cg", max_iter=1000)
    return Pipeline([("features", features), ("model", classifier)])


def train(
    data: Path = SAMPLE,
    *,
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
    examples = load(data)
    train_set, test_set = train_test_split(
        examples, test_size=0.25, random_state=seed, stratify=examples[LABEL]
    )
    with mlflow.start_run() as run:
        mlflow.log_params(
            {
                "seed": seed,
                "rows": len(examples),
                "labels": ",".join(sorted(set(examples[LABEL]))),
                "word_ngrams": "-".join(map(str, WORD_NGRAMS)),
                "char_ngrams": "-".join(map(str, CHAR_NGRAMS)),
                "C": C,
            }
        )
        model = build().fit(train_set[[TEXT]], train_set[LABEL])
        predicted = model.predict(test_set[[TEXT]])
        metrics = {
            "accuracy": float(accuracy_score(test_set[LABEL], predicted)),
            # Every topic counts the same, however few tickets it has.
            "macro_f1": float(f1_score(test_set[LABEL], predicted, average="macro")),
        }
        mlflow.log_metrics(metrics)
        logged = mlflow.sklearn.log_model(
            model,
            name="model",
            input_example=train_set[[TEXT]].head(3),
            pip_requirements=REQUIREMENTS,
        )
    return Trained(run.info.run_id, metrics, logged.model_uri)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", type=Path, default=SAMPLE)
    parser.add_argument("--seed", type=int, default=42)
    options = parser.parse_args()
    trained = train(options.data, seed=options.seed)
    shown = ", ".join(f"{name} {value:.3f}" for name, value in trained.metrics.items())
    print(f"run {trained.run_id}: {shown}; model {trained.model_uri}")


if __name__ == "__main__":
    main()

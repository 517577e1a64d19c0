"""Training works on the sample, the model is good enough, and it loads back from MLflow."""

from __future__ import annotations

from pathlib import Path

import mlflow
import pytest
from conftest import Tracking

from ${{ values.package }}.train import SAMPLE, load, train


def test_the_sample_has_features_and_both_labels() -> None:
    features, x, y = load(SAMPLE)
    assert len(features) == x.shape[1] >= 2
    assert set(y) == {0, 1}


@pytest.mark.parametrize("algorithm", ["logistic-regression", "random-forest"])
def test_a_training_run_is_logged_with_its_metrics_and_model(
    tracking: Tracking, algorithm: str
) -> None:
    trained = train(
        algorithm=algorithm, tracking_uri=tracking.uri, artifact_location=tracking.artifacts
    )

    assert trained.metrics["roc_auc"] > 0.75
    assert trained.metrics["accuracy"] > 0.7
    run = mlflow.get_run(trained.run_id)
    assert run.data.params["algorithm"] == algorithm
    assert set(run.data.metrics) == {"accuracy", "f1", "roc_auc"}
    model = mlflow.sklearn.load_model(trained.model_uri)
    _, x, _ = load(SAMPLE)
    assert set(model.predict(x[:20])) <= {0, 1}


def test_data_without_labels_is_refused(tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("a,b\n1,2\n")
    with pytest.raises(ValueError, match="label"):
        load(bad)

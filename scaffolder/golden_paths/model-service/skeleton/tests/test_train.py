"""Training works on the sample, the model is good enough, and it becomes the champion with
a signature that names and types its features."""

from __future__ import annotations

from pathlib import Path

import mlflow
import pytest

from ${{ values.package }}.train import CHAMPION, NAME, SAMPLE, Trained, load


def test_the_sample_has_features_and_a_target() -> None:
    x, y = load(SAMPLE)
    assert list(x.columns) == ["distance_km", "items", "vehicle", "raining"]
    assert len(y) == len(x) >= 100
    assert y.min() > 0


def test_a_training_run_is_logged_and_its_model_made_the_champion(trained: Trained) -> None:
    assert trained.metrics["r2"] > 0.9
    assert trained.metrics["mae"] < 3
    run = mlflow.get_run(trained.run_id)
    assert set(run.data.metrics) == {"mae", "r2"}
    champion = mlflow.MlflowClient().get_model_version_by_alias(NAME, CHAMPION)
    assert str(champion.version) == trained.version
    assert champion.run_id == trained.run_id
    signature = mlflow.models.get_model_info(trained.model_uri).signature
    # These types become the request's field types in the service.
    assert {column.name: column.type.name for column in signature.inputs.inputs} == {
        "distance_km": "double",
        "items": "long",
        "vehicle": "string",
        "raining": "boolean",
    }


def test_data_without_a_target_is_refused(tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("a,b\n1,2\n")
    with pytest.raises(ValueError, match="minutes"):
        load(bad)

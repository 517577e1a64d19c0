"""Training works on the digits, the model is good enough, and it loads back from MLflow to
read new images."""

from __future__ import annotations

import mlflow
import numpy as np
import pytest
from conftest import Tracking
from sklearn.model_selection import train_test_split

from ${{ values.package }}.images import load
from ${{ values.package }}.predict import predict
from ${{ values.package }}.train import ALGORITHM, ALGORITHMS, CONFUSION_MATRIX, Trained, build, train


@pytest.fixture(scope="module")
def trained(tracking: Tracking) -> Trained:
    """One training run for every test here: logging a model takes seconds."""
    return train(tracking_uri=tracking.uri, artifact_location=tracking.artifacts)


@pytest.fixture(scope="module")
def model(trained: Trained) -> mlflow.pyfunc.PyFuncModel:
    return mlflow.pyfunc.load_model(trained.model_uri)


def test_a_training_run_is_logged_with_its_metrics_and_confusion_matrix(trained: Trained) -> None:
    assert trained.metrics["accuracy"] > 0.9
    assert trained.metrics["macro_f1"] > 0.9
    run = mlflow.get_run(trained.run_id)
    assert run.data.params["algorithm"] == ALGORITHM
    assert run.data.metrics == trained.metrics
    table = mlflow.artifacts.load_text(f"{run.info.artifact_uri}/{CONFUSION_MATRIX}")
    header, *rows = (line.split(",") for line in table.splitlines())
    assert header == ["true", *(f"predicted {digit}" for digit in range(10))]
    assert [row[0] for row in rows] == [str(digit) for digit in range(10)]
    matrix = np.array([row[1:] for row in rows], dtype=int)
    assert np.trace(matrix) / matrix.sum() == pytest.approx(trained.metrics["accuracy"])


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_each_algorithm_learns_the_digits(algorithm: str) -> None:
    x, y = load()
    x_train, x_test, y_train, y_test = train_test_split(
        x, y, test_size=0.25, random_state=0, stratify=y
    )
    assert build(algorithm).fit(x_train, y_train).score(x_test, y_test) > 0.9


def test_an_unknown_algorithm_is_refused() -> None:
    with pytest.raises(ValueError, match="expected one of svm, logistic-regression"):
        build("random-forest")


def test_the_logged_model_reads_flattened_8x8_images(model: mlflow.pyfunc.PyFuncModel) -> None:
    x, y = load()
    assert predict(model, x[0]) == [y[0]]
    digits = predict(model, x[:100])
    assert np.mean(np.array(digits) == y[:100]) > 0.9
    assert predict(model, x[:100].reshape(100, 8, 8)) == digits


def test_the_logged_model_refuses_images_of_the_wrong_shape(
    model: mlflow.pyfunc.PyFuncModel,
) -> None:
    with pytest.raises(ValueError, match=r"expected 8x8 images.*got shape \(1, 28, 28\)"):
        predict(model, np.zeros((1, 28, 28)))

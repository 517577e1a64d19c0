"""Training works on the sample, the model is good enough, and it loads back from MLflow to
label new texts."""

from __future__ import annotations

import mlflow
import pytest
from conftest import Tracking

from ${{ values.package }}.predict import predict
from ${{ values.package }}.train import Trained, train


@pytest.fixture(scope="module")
def trained(tracking: Tracking) -> Trained:
    """One training run for every test here: logging a model takes seconds."""
    return train(tracking_uri=tracking.uri, artifact_location=tracking.artifacts)


@pytest.fixture(scope="module")
def model(trained: Trained) -> mlflow.pyfunc.PyFuncModel:
    return mlflow.pyfunc.load_model(trained.model_uri)


def test_a_training_run_is_logged_with_its_metrics(trained: Trained) -> None:
    assert trained.metrics["macro_f1"] > 0.8
    assert trained.metrics["accuracy"] > 0.8
    run = mlflow.get_run(trained.run_id)
    assert run.data.params["labels"] == "account,billing,shipping,technical"
    assert run.data.metrics == trained.metrics


def test_the_logged_model_labels_obvious_texts(model: mlflow.pyfunc.PyFuncModel) -> None:
    texts = [
        "Please refund the double charge on my credit card",
        "The app crashes with an error every time I start it",
        "I forgot my password and cannot log in",
        "My parcel never arrived, where is the delivery?",
    ]
    assert predict(model, texts) == ["billing", "technical", "account", "shipping"]


def test_the_logged_model_refuses_empty_texts(model: mlflow.pyfunc.PyFuncModel) -> None:
    with pytest.raises(ValueError, match=r"texts\[1\]"):
        predict(model, ["Please refund me", ""])

"""Label texts with a model that train.py logged:
``python -m ${{ values.package }}.predict MODEL_URI "first text" "second text"``."""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence

import mlflow
import pandas as pd

from ${{ values.package }}.texts import TEXT, check_texts


def predict(model: mlflow.pyfunc.PyFuncModel, texts: Sequence[str]) -> list[str]:
    """The label of each text, in order."""
    frame = pd.DataFrame({TEXT: check_texts(texts)})
    return [str(label) for label in model.predict(frame)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "model_uri", help="as train.py prints it, or models:/${{ values.name }}/<version>"
    )
    parser.add_argument("texts", nargs="+", metavar="text")
    options = parser.parse_args()
    mlflow.set_tracking_uri(os.environ.get("MLFLOW_TRACKING_URI") or "sqlite:///mlflow.db")
    model = mlflow.pyfunc.load_model(options.model_uri)
    for label, text in zip(predict(model, options.texts), options.texts, strict=True):
        print(f"{label}\t{text}")


if __name__ == "__main__":
    main()

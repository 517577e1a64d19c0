"""Read digits from images with a model that train.py logged:
``python -m ${{ values.package }}.predict MODEL_URI images.npy``."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import mlflow
import numpy as np
from numpy.typing import ArrayLike

from ${{ values.package }}.images import flatten


def predict(model: mlflow.pyfunc.PyFuncModel, images: ArrayLike) -> list[int]:
    """The digit each image shows, in order; ``images`` as :func:`flatten` takes them."""
    return [int(digit) for digit in model.predict(flatten(images))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "model_uri", help="as train.py prints it, or models:/${{ values.name }}/<version>"
    )
    parser.add_argument(
        "images", type=Path, help="a .npy file of 8x8 images, shaped (n, 8, 8) or (n, 64)"
    )
    options = parser.parse_args()
    mlflow.set_tracking_uri(os.environ.get("MLFLOW_TRACKING_URI") or "sqlite:///mlflow.db")
    model = mlflow.pyfunc.load_model(options.model_uri)
    for digit in predict(model, np.load(options.images, allow_pickle=False)):
        print(digit)


if __name__ == "__main__":
    main()

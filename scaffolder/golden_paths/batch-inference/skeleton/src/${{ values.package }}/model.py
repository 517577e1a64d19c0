"""The model the job scores with: loaded from MLflow by URI, with the columns its signature
asks for and the registry version it was loaded as."""

from __future__ import annotations

import re
from dataclasses import dataclass

import mlflow
import numpy as np
import pandas as pd
from mlflow.pyfunc import PyFuncModel

NAME = "${{ values.name }}"
DEFAULT_URI = f"models:/{NAME}@champion"
# models:/<name>@<alias> or models:/<name>/<version>: a version of a registered model.
REGISTERED = re.compile(r"^models:/(?P<name>[^/@]+)(?:@(?P<alias>[^/@]+)|/(?P<version>\d+))$")


@dataclass(frozen=True)
class ScoringModel:
    """A model ready to score with, and what each prediction records about it."""

    uri: str
    version: str | None  # the registry version; None for a model loaded by run or path
    run_id: str | None  # the MLflow run that logged the model
    columns: tuple[str, ...]  # every input column of the signature, in its order
    required: tuple[str, ...]  # the columns an input cannot do without
    pyfunc: PyFuncModel

    def predict(self, rows: pd.DataFrame) -> np.ndarray:
        """One prediction per row; ``rows`` may hold other columns, they are left out."""
        features = rows[[column for column in self.columns if column in rows.columns]]
        values = np.asarray(self.pyfunc.predict(features))
        if values.ndim == 2 and values.shape[1] == 1:
            values = values[:, 0]
        if values.ndim != 1:
            raise ValueError(f"{self.uri} returns {values.shape[1]} values per row, not one")
        return values


def load_model(uri: str) -> ScoringModel:
    """The model at ``uri``; ValueError if its signature does not name its input columns,
    since the job checks every input against them."""
    pinned, version = pin_version(uri)
    pyfunc = mlflow.pyfunc.load_model(pinned)
    schema = pyfunc.metadata.get_input_schema()
    if schema is None or not schema.has_input_names():
        raise ValueError(f"{uri} has no signature naming its input columns: log it with one")
    return ScoringModel(
        uri=uri,
        version=version,
        run_id=pyfunc.metadata.run_id,
        columns=tuple(schema.input_names()),
        required=tuple(schema.required_input_names()),
        pyfunc=pyfunc,
    )


def pin_version(uri: str) -> tuple[str, str | None]:
    """``uri`` with its alias replaced by the version the alias points at now, and that
    version: an alias can move while the job runs, and every row must name its version."""
    registered = REGISTERED.match(uri)
    if registered is None:
        return uri, None
    name, version = registered["name"], registered["version"]
    if version is None:
        found = mlflow.MlflowClient().get_model_version_by_alias(name, registered["alias"])
        version = str(found.version)
    return f"models:/{name}/{version}", version

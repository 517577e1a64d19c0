"""The model the service scores with: loaded from MLflow by URI, with the features its
signature asks for and the registry version it was loaded as."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import mlflow
import numpy as np
import pandas as pd
from mlflow.pyfunc import PyFuncModel
from mlflow.types import DataType

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
    features: dict[str, str]  # each input of the signature and its type: double, long, string...
    required: tuple[str, ...]  # the features an event cannot do without
    pyfunc: PyFuncModel

    def predict(self, rows: list[dict[str, Any]]) -> list[Any]:
        """One prediction per row, as plain values ready for JSON."""
        frame = pd.DataFrame.from_records(rows, columns=list(self.features))
        values = np.asarray(self.pyfunc.predict(frame))
        if values.ndim == 2 and values.shape[1] == 1:
            values = values[:, 0]
        if values.ndim != 1:
            raise ValueError(f"{self.uri} returns {values.shape[1]} values per row, not one")
        return list(values.tolist())


def load_model(uri: str) -> ScoringModel:
    """The model at ``uri``; ValueError if its signature does not name its inputs, since
    every event is checked against them."""
    pinned, version = pin_version(uri)
    pyfunc = mlflow.pyfunc.load_model(pinned)
    schema = pyfunc.metadata.get_input_schema()
    if schema is None or not schema.has_input_names():
        raise ValueError(f"{uri} has no signature naming its inputs: log it with one")
    return ScoringModel(
        uri=uri,
        version=version,
        run_id=pyfunc.metadata.run_id,
        features={
            spec.name: spec.type.name if isinstance(spec.type, DataType) else "object"
            for spec in schema.inputs
        },
        required=tuple(schema.required_input_names()),
        pyfunc=pyfunc,
    )


def pin_version(uri: str) -> tuple[str, str | None]:
    """``uri`` with its alias replaced by the version the alias points at now, and that
    version: every result names the version that scored it."""
    registered = REGISTERED.match(uri)
    if registered is None:
        return uri, None
    name, version = registered["name"], registered["version"]
    if version is None:
        found = mlflow.MlflowClient().get_model_version_by_alias(name, registered["alias"])
        version = str(found.version)
    return f"models:/{name}/{version}", version

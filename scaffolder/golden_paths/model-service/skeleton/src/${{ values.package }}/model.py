"""The model the service serves: loaded once from MLflow, with the features its signature
names and types, which become the fields of a prediction request."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import mlflow
import numpy as np
import pandas as pd
from mlflow.pyfunc import PyFuncModel
from mlflow.types import DataType, Schema
from pydantic import StrictBool, StrictFloat, StrictInt, StrictStr

# The type a request gives each kind of column. Strict, so that "3" is refused where a
# number is expected instead of being guessed at; a float field still takes 3.
REQUEST_TYPES: dict[DataType, Any] = {
    DataType.boolean: StrictBool,
    DataType.integer: StrictInt,
    DataType.long: StrictInt,
    DataType.float: StrictFloat,
    DataType.double: StrictFloat,
    DataType.string: StrictStr,
    DataType.datetime: datetime,
}


class UnservableModel(ValueError):
    """A model the service cannot type requests for: it has no signature with named columns."""


@dataclass(frozen=True)
class Feature:
    """A column of the model's signature, as a request field."""

    name: str
    type: Any  # what a request gives: one of REQUEST_TYPES, or Any for other columns
    is_required: bool


@dataclass(frozen=True)
class ServedModel:
    """A loaded model, with what the service tells about it and types its requests by."""

    uri: str
    version: str | None  # the registered version loaded, when the URI names one
    run_id: str | None  # the run that logged it
    pyfunc: PyFuncModel
    input_schema: Schema
    features: tuple[Feature, ...]
    example: list[dict[str, Any]]  # the input example logged with the model, as records

    def predict(self, instances: list[dict[str, Any]]) -> list[Any]:
        """The model's predictions for instances keyed by feature name, as JSON values."""
        frame = pd.DataFrame(instances, columns=[feature.name for feature in self.features])
        return as_json_values(self.pyfunc.predict(frame))


@dataclass(frozen=True)
class UnloadedModel:
    """A model that did not load, and why."""

    uri: str
    reason: str


def load_model(uri: str) -> ServedModel:
    """The model at ``uri``. An alias (``models:/name@champion``) is resolved to its version
    before loading, so the version the service reports is the one it loaded, even if the
    alias moves meanwhile."""
    pinned, version = pin_version(uri)
    pyfunc = mlflow.pyfunc.load_model(pinned)
    schema = pyfunc.metadata.get_input_schema()
    if schema is None or schema.is_tensor_spec() or not schema.has_input_names():
        raise UnservableModel(
            f"{uri} has no signature with named columns: log it with an input_example "
            "that is a DataFrame (see train.py)"
        )
    features = tuple(
        Feature(column.name, request_type(column.type), column.required) for column in schema.inputs
    )
    logged = pyfunc.input_example
    records = as_json_values(logged) if isinstance(logged, pd.DataFrame) else []
    names = [feature.name for feature in features]
    example = [{name: record.get(name) for name in names} for record in records]
    run_id: str | None = pyfunc.metadata.run_id
    return ServedModel(uri, version, run_id, pyfunc, schema, features, example)


def request_type(column_type: Any) -> Any:
    """What a request gives for a column of ``column_type``; Any for the types (arrays,
    objects) that MLflow checks itself."""
    return REQUEST_TYPES.get(column_type, Any) if isinstance(column_type, DataType) else Any


def pin_version(uri: str) -> tuple[str, str | None]:
    """``uri`` with an alias replaced by the registered version it points at, and that
    version; None for a URI that names no registered version (``runs:/``, ``models:/m-...``)."""
    if not uri.startswith("models:/"):
        return uri, None
    name, has_alias, alias = uri.removeprefix("models:/").partition("@")
    if has_alias:
        version = str(mlflow.MlflowClient().get_model_version_by_alias(name, alias).version)
        return f"models:/{name}/{version}", version
    _, _, version = name.partition("/")
    return uri, version if version.isdigit() else None


def as_json_values(data: Any) -> list[Any]:
    """Predictions (or an example) as plain JSON values: a list with one item per row."""
    if isinstance(data, pd.DataFrame | pd.Series):
        # pandas writes its own scalars (numpy numbers, timestamps, NaN) as JSON correctly.
        return list(json.loads(data.to_json(orient="records", date_format="iso")))
    if isinstance(data, np.ndarray):
        return list(data.tolist())
    return list(data)

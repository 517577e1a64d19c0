"""The HTTP service: predictions from the MLflow model at MODEL_URI, with requests typed by
the model's signature; MLflow's own scoring protocol; probes; Prometheus metrics.

Run it with ``uvicorn ${{ values.package }}.service:create_app --factory``: the model loads
once, when the service starts.
"""

# No ``from __future__ import annotations`` here: FastAPI reads the request type of
# /v1/predict, which create_app makes from the model's signature, from the live annotation.

import logging
import os
from typing import Any

from fastapi import FastAPI, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from mlflow.exceptions import MlflowException
from mlflow.pyfunc import scoring_server
from pydantic import BaseModel, ConfigDict, Field, create_model

from ${{ values.package }}.metrics import PROMETHEUS_TEXT, Recorder, gauge
from ${{ values.package }}.middleware import LimitBodySize, ObserveRequests
from ${{ values.package }}.model import ServedModel, UnloadedModel, load_model

NAME = "${{ values.name }}"
DESCRIPTION = ${{ values.description | dump }}  # noqa: E501 (as written in the template form)
DEFAULT_MODEL_URI = f"models:/{NAME}@champion"
DEFAULT_MAX_BODY_BYTES = 1024 * 1024

logger = logging.getLogger(__name__)


class ModelInfo(BaseModel):
    uri: str = Field(description="The model URI the service started with")
    version: str | None = Field(description="The registered version loaded, if the URI names one")
    run_id: str | None = Field(description="The MLflow run that logged the model")


class Predictions(BaseModel):
    predictions: list[Any] = Field(description="One for each instance, in the same order")
    model: ModelInfo


class Readiness(BaseModel):
    ready: bool
    model: ModelInfo
    reason: str | None = Field(None, description="Why the model is not loaded")


def create_app(model_uri: str | None = None, *, max_body_bytes: int | None = None) -> FastAPI:
    """The service for the model at ``model_uri`` (default: $MODEL_URI, else the champion),
    refusing request bodies over ``max_body_bytes`` (default: $MAX_BODY_BYTES, else 1 MiB).

    A model that does not load does not stop the service: it starts unready, /readyz says
    why, and the prediction routes answer 503.
    """
    uri = model_uri or os.environ.get("MODEL_URI") or DEFAULT_MODEL_URI
    limit = max_body_bytes or int(os.environ.get("MAX_BODY_BYTES") or DEFAULT_MAX_BODY_BYTES)
    return build_app(_load(uri), max_body_bytes=limit)


def build_app(
    loaded: ServedModel | UnloadedModel, *, max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
) -> FastAPI:
    """The service for a model already loaded (or not): what create_app returns, and what
    tests build around the one model they load."""
    model = loaded if isinstance(loaded, ServedModel) else None
    problem = loaded.reason if isinstance(loaded, UnloadedModel) else None
    info = ModelInfo(
        uri=loaded.uri,
        version=model.version if model else None,
        run_id=model.run_id if model else None,
    )
    recorder = Recorder()
    app = FastAPI(title=NAME, description=DESCRIPTION, version="1")
    app.state.model = loaded
    app.add_middleware(LimitBodySize, max_bytes=max_body_bytes)
    # Added last, so it runs first: it sees every answer, the 413s included.
    app.add_middleware(ObserveRequests, recorder=recorder)

    def loaded_model() -> ServedModel:
        if model is None:
            raise HTTPException(503, detail=f"the model is not loaded: {problem}")
        return model

    PredictionRequest = prediction_request(model)  # noqa: N806 (a class, made at start-up)

    @app.post("/v1/predict", responses={503: {"description": "The model is not loaded"}})
    def predict(request: PredictionRequest) -> Predictions:  # type: ignore[valid-type]
        """Predictions for instances whose fields are the model's features."""
        served = loaded_model()
        try:
            predictions = served.predict(feature_rows(request))
        except MlflowException as error:  # MLflow's own checks of the input, past the types
            raise HTTPException(error.get_http_status_code(), detail=error.message) from error
        return Predictions(predictions=predictions, model=info)

    @app.post("/invocations", response_model=None, openapi_extra=scoring_protocol(model))
    async def invocations(request: Request) -> Response:
        """Predictions in MLflow's scoring protocol, as `mlflow models serve` answers them."""
        served = loaded_model()
        body = await request.body()
        content_type = request.headers.get("content-type", "application/json")
        try:
            answer = await run_in_threadpool(
                scoring_server.invocations, body, content_type, served.pyfunc, served.input_schema
            )
        except MlflowException as error:
            return Response(
                error.serialize_as_json(),
                status_code=error.get_http_status_code(),
                media_type="application/json",
            )
        return Response(answer.response, status_code=answer.status, media_type=answer.mimetype)

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> dict[str, str]:
        """Alive: the process answers. Whether it can predict is /readyz."""
        return {"status": "alive"}

    @app.get("/readyz", include_in_schema=False)
    async def readyz() -> JSONResponse:
        """Ready when the model is loaded; otherwise 503, and why."""
        readiness = Readiness(ready=model is not None, model=info, reason=problem)
        return JSONResponse(readiness.model_dump(), status_code=200 if model else 503)

    @app.get("/metrics", include_in_schema=False)
    async def metrics() -> PlainTextResponse:
        """Requests, errors and latencies in Prometheus' text format. Async, so that it runs
        on the event loop like the middleware that records them."""
        is_loaded = gauge("model_loaded", "Whether the model is loaded.", int(model is not None))
        return PlainTextResponse(recorder.prometheus_text() + is_loaded, media_type=PROMETHEUS_TEXT)

    return app


def prediction_request(model: ServedModel | None) -> type[BaseModel]:
    """The body of /v1/predict: instances whose fields are the model's features, typed as
    its signature types them. Unknown fields are refused, so a misspelt feature is named
    rather than ignored. Without a model there is nothing to check them against."""
    if model is None:
        return create_model("PredictionRequest", instances=(list[dict[str, Any]], ...))
    fields: dict[str, Any] = {
        # Fields go by position; the alias is the feature's name, which may be any string.
        f"feature_{index}": (
            feature.type if feature.is_required else feature.type | None,
            Field(... if feature.is_required else None, alias=feature.name, title=feature.name),
        )
        for index, feature in enumerate(model.features)
    }
    instance = create_model("Instance", __config__=ConfigDict(extra="forbid"), **fields)
    examples: list[Any] = [{"instances": model.example}] if model.example else []
    return create_model(
        "PredictionRequest",
        __config__=ConfigDict(json_schema_extra={"examples": examples} if examples else None),
        instances=(list[instance], Field(min_length=1)),  # type: ignore[valid-type]
    )


def feature_rows(request: Any) -> list[dict[str, Any]]:
    """The instances of a prediction request as rows keyed by feature name (their aliases)."""
    return [instance.model_dump(by_alias=True) for instance in request.instances]


def scoring_protocol(model: ServedModel | None) -> dict[str, Any]:
    """The OpenAPI of /invocations' body: what ``mlflow models serve`` takes."""
    example: dict[str, Any] = {}
    if model is not None:
        columns = [feature.name for feature in model.features]
        rows = [[record.get(name) for name in columns] for record in model.example]
        example = {"dataframe_split": {"columns": columns, "data": rows}}
    formats = ("dataframe_split", "dataframe_records", "instances", "inputs")
    return {
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {
                    "schema": {
                        "type": "object",
                        "description": f"One of {', '.join(formats)}; and params, if the "
                        "model takes any",
                        "properties": {name: {} for name in (*formats, "params")},
                    },
                    "example": example,
                },
                "text/csv": {"schema": {"type": "string", "description": "A header line first"}},
            },
        },
        "responses": {
            "200": {
                "description": "The predictions",
                "content": {"application/json": {"example": {"predictions": []}}},
            },
            "400": {"description": "MLflow's error: error_code and message"},
        },
    }


def _load(uri: str) -> ServedModel | UnloadedModel:
    """The model at ``uri``, or why it did not load."""
    try:
        return load_model(uri)
    except Exception as error:  # any failure: the service starts unready and says why
        logger.exception("the model did not load", extra={"model_uri": uri})
        return UnloadedModel(uri, f"{type(error).__name__}: {error}")

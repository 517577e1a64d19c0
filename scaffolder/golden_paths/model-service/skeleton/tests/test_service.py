"""The service predicts for valid instances, names what is wrong with invalid ones, speaks
MLflow's scoring protocol, says whether it is ready, counts what it answers, and refuses
oversized bodies."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest
from fastapi.testclient import TestClient

from ${{ values.package }}.logs import JsonFormatter
from ${{ values.package }}.model import ServedModel
from ${{ values.package }}.service import DEFAULT_MODEL_URI, build_app, create_app
from ${{ values.package }}.train import NAME, Trained

DELIVERIES = [
    {"distance_km": 2.5, "items": 3, "vehicle": "bike", "raining": False},
    {"distance_km": 9.0, "items": 8, "vehicle": "car", "raining": True},
]
COLUMNS = list(DELIVERIES[0])
# The same deliveries in each of the formats of MLflow's scoring protocol.
MLFLOW_FORMATS = {
    "dataframe_split": {"columns": COLUMNS, "data": [list(d.values()) for d in DELIVERIES]},
    "dataframe_records": DELIVERIES,
    "inputs": {name: [d[name] for d in DELIVERIES] for name in COLUMNS},
    "instances": DELIVERIES,
}


def predict(client: TestClient, instances: list[dict[str, Any]]) -> Any:
    return client.post("/v1/predict", json={"instances": instances})


def test_each_instance_gets_a_prediction_from_the_model_it_names(
    client: TestClient, trained: Trained
) -> None:
    answer = predict(client, DELIVERIES)

    assert answer.status_code == 200, answer.text
    body = answer.json()
    short, long = body["predictions"]
    assert 5 < short < long < 90  # minutes
    assert body["model"] == {
        "uri": DEFAULT_MODEL_URI,
        "version": trained.version,
        "run_id": trained.run_id,
    }


def test_a_missing_feature_is_a_422_naming_it(client: TestClient) -> None:
    answer = predict(client, [DELIVERIES[0], {"items": 3, "vehicle": "bike", "raining": False}])

    assert answer.status_code == 422
    [problem] = answer.json()["detail"]
    assert problem["loc"] == ["body", "instances", 1, "distance_km"]
    assert problem["type"] == "missing"


@pytest.mark.parametrize(
    ("feature", "value", "expected"),
    [
        ("distance_km", "far", "float_type"),
        ("items", "3", "int_type"),
        ("raining", "yes", "bool_type"),
    ],
)
def test_a_wrongly_typed_feature_is_a_422_naming_it(
    client: TestClient, feature: str, value: str, expected: str
) -> None:
    answer = predict(client, [{**DELIVERIES[0], feature: value}])

    assert answer.status_code == 422
    [problem] = answer.json()["detail"]
    assert problem["loc"] == ["body", "instances", 0, feature]
    assert problem["type"] == expected


def test_a_misspelt_feature_is_named_not_ignored(client: TestClient) -> None:
    instance = {**DELIVERIES[0], "distance_kms": 2.5}
    del instance["distance_km"]

    answer = predict(client, [instance])

    assert answer.status_code == 422
    named = {(problem["loc"][-1], problem["type"]) for problem in answer.json()["detail"]}
    assert named == {("distance_km", "missing"), ("distance_kms", "extra_forbidden")}


def test_a_request_without_instances_is_a_422(client: TestClient) -> None:
    assert predict(client, []).status_code == 422
    assert client.post("/v1/predict", json={"rows": DELIVERIES}).status_code == 422


@pytest.mark.parametrize(
    "body", [{name: data} for name, data in MLFLOW_FORMATS.items()], ids=list(MLFLOW_FORMATS)
)
def test_invocations_take_mlflows_formats_and_agree_with_v1(
    client: TestClient, body: dict[str, Any]
) -> None:
    answer = client.post("/invocations", json=body)

    assert answer.status_code == 200, answer.text
    assert answer.json() == {"predictions": predict(client, DELIVERIES).json()["predictions"]}


def test_invocations_take_csv(client: TestClient) -> None:
    csv = "distance_km,items,vehicle,raining\n2.5,3,bike,false\n9.0,8,car,true\n"

    answer = client.post("/invocations", content=csv, headers={"content-type": "text/csv"})

    assert answer.status_code == 200, answer.text
    assert len(answer.json()["predictions"]) == 2


def test_invocations_refuse_what_mlflow_refuses_as_it_does(client: TestClient) -> None:
    answer = client.post("/invocations", json={"rows": DELIVERIES})

    assert answer.status_code == 400
    assert answer.json()["error_code"] == "BAD_REQUEST"
    assert "dataframe_split" in answer.json()["message"]


def test_the_service_serves_the_champion_unless_told_otherwise(
    trained: Trained, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MODEL_URI", raising=False)
    with TestClient(create_app()) as client:
        assert client.get("/healthz").json() == {"status": "alive"}
        ready = client.get("/readyz")

    assert ready.status_code == 200
    assert ready.json() == {
        "ready": True,
        "model": {"uri": DEFAULT_MODEL_URI, "version": trained.version, "run_id": trained.run_id},
        "reason": None,
    }


def test_a_model_that_does_not_load_leaves_the_service_alive_but_unready(
    trained: Trained,
) -> None:
    with TestClient(create_app(f"models:/{NAME}@no-such-alias")) as client:
        assert client.get("/healthz").status_code == 200
        ready = client.get("/readyz")
        assert ready.status_code == 503
        assert ready.json()["ready"] is False
        assert "no-such-alias" in ready.json()["reason"]
        refused = client.post("/v1/predict", json={"instances": DELIVERIES})
        assert refused.status_code == 503
        assert "not loaded" in refused.json()["detail"]
        refused = client.post("/invocations", json={"dataframe_records": DELIVERIES})
        assert refused.status_code == 503
        metrics = client.get("/metrics").text
    assert "model_loaded 0" in metrics
    assert 'http_request_errors_total{route="/v1/predict"} 1' in metrics


def test_metrics_count_requests_by_status_and_time_them(client: TestClient) -> None:
    predict(client, DELIVERIES)
    predict(client, DELIVERIES)
    predict(client, [{"items": 3}])
    client.get("/no-such-page")

    answer = client.get("/metrics")

    assert answer.headers["content-type"].startswith("text/plain; version=0.0.4")
    lines = answer.text.splitlines()
    assert 'http_requests_total{route="/v1/predict",status="200"} 2' in lines
    assert 'http_requests_total{route="/v1/predict",status="422"} 1' in lines
    assert 'http_requests_total{route="unmatched",status="404"} 1' in lines
    assert 'http_request_errors_total{route="/v1/predict"} 0' in lines
    assert 'http_request_duration_seconds_count{route="/v1/predict"} 3' in lines
    latencies = dict(
        line.rsplit(" ", 1) for line in lines if line.startswith("http_request_duration_seconds{")
    )
    p50 = latencies['http_request_duration_seconds{route="/v1/predict",quantile="0.5"}']
    p99 = latencies['http_request_duration_seconds{route="/v1/predict",quantile="0.99"}']
    assert 0 < float(p50) <= float(p99) < 5
    assert "model_loaded 1" in lines


def test_an_oversized_body_is_a_413_whether_its_length_is_declared_or_not(
    champion: ServedModel,
) -> None:
    body = json.dumps({"instances": DELIVERIES * 50}).encode()
    json_body = {"content-type": "application/json"}
    with TestClient(build_app(champion, max_body_bytes=1000)) as client:
        declared = client.post("/v1/predict", content=body, headers=json_body)
        # Sent in chunks, without a Content-Length: the limit counts the bytes as they come.
        chunked = client.post(
            "/invocations", content=iter([body[:800], body[800:]]), headers=json_body
        )
        small = predict(client, DELIVERIES)
        metrics = client.get("/metrics").text.splitlines()

    assert declared.status_code == 413
    assert "1000 bytes" in declared.json()["detail"]
    assert chunked.status_code == 413
    assert small.status_code == 200
    assert 'http_requests_total{route="/v1/predict",status="413"} 1' in metrics
    assert 'http_requests_total{route="/invocations",status="413"} 1' in metrics


def test_each_request_is_logged_as_one_json_line(
    client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="${{ values.package }}.access"):
        answer = predict(client, DELIVERIES)
        client.get("/healthz", headers={"x-request-id": "from-the-caller"})

    access = [record for record in caplog.records if record.name == "${{ values.package }}.access"]
    first, second = (json.loads(JsonFormatter().format(record)) for record in access)
    assert first["message"] == "request"
    assert first["route"] == "/v1/predict"
    assert first["status"] == 200
    assert first["duration_ms"] > 0
    assert first["request_id"] == answer.headers["x-request-id"]
    assert second["request_id"] == "from-the-caller"

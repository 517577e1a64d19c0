"""Liveness, readiness, metrics, request ids and JSON logs."""

import json
import logging

from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from portal import schema
from portal.observability import JsonFormatter, request_id_var


def test_healthz_answers_while_alive(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}


def test_readyz_checks_the_database_and_its_schema(client: TestClient) -> None:
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.json()["status"] == "ready"
    assert response.json()["checks"]["database"]["ok"] is True


def test_readyz_is_503_with_a_reason_when_migrations_are_behind(
    client: TestClient, engine: Engine
) -> None:
    schema.downgrade(engine, "base")
    response = client.get("/readyz")
    assert response.status_code == 503
    reason = response.json()["checks"]["database"]["reason"]
    assert reason.startswith("database schema is at revision none, the code expects ")
    assert reason.endswith("run `paved db upgrade`")


def test_metrics_count_requests_by_route_template_and_status(client: TestClient) -> None:
    client.get("/api/tasks/41")
    client.get("/api/tasks/42")
    client.get("/no/such/page")
    text = client.get("/metrics").text
    assert (
        'paved_http_requests_total{method="GET",route="/api/tasks/{task_id}",status="404"} 2.0'
        in text
    )
    assert 'paved_http_requests_total{method="GET",route="<unmatched>",status="404"} 1.0' in text
    assert (
        'paved_http_request_duration_seconds_count{method="GET",route="/api/tasks/{task_id}",'
        'status="404"} 2.0' in text
    )


def test_a_given_request_id_is_returned_and_a_missing_one_is_made(client: TestClient) -> None:
    assert (
        client.get("/healthz", headers={"X-Request-ID": "abc-123"}).headers["X-Request-ID"]
        == "abc-123"
    )
    made = client.get("/healthz").headers["X-Request-ID"]
    assert len(made) == 32
    unsafe = client.get("/healthz", headers={"X-Request-ID": "bad id\twith spaces"})
    assert unsafe.headers["X-Request-ID"] != "bad id\twith spaces"


def test_json_log_lines_carry_the_request_id_and_extras() -> None:
    record = logging.LogRecord("paved.access", logging.INFO, __file__, 1, "GET %s", ("/",), None)
    record.route = "/"
    token = request_id_var.set("req-7")
    try:
        line = json.loads(JsonFormatter().format(record))
    finally:
        request_id_var.reset(token)
    assert line["message"] == "GET /"
    assert line["request_id"] == "req-7"
    assert line["route"] == "/"
    assert line["level"] == "info"

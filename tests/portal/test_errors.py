"""Every API error is RFC 9457 problem JSON; browsers get a readable page instead."""

import io
import json
import logging

import pytest
from fastapi import APIRouter, FastAPI
from fastapi.testclient import TestClient
from pydantic import BaseModel
from sqlalchemy.engine import Engine

from portal import Action, InvalidInput, requires
from portal.app import create_app
from portal.observability import JsonFormatter
from portal.plugins import Plugins
from portal.settings import Settings

from factories import throwaway_plugin

PROBE = Action("probe.thing.create", "Create a probe thing")


class ThingIn(BaseModel):
    name: str
    replicas: int


def _probe_router() -> APIRouter:
    router = APIRouter()

    @router.post("/api/probe/things", dependencies=[requires(PROBE)])
    def create_thing(body: ThingIn) -> dict[str, str]:
        if body.name == "taken":
            raise InvalidInput.for_field("name", "already used", "a name no thing has")
        return {"name": body.name}

    @router.get("/api/probe/crash", dependencies=[requires(PROBE)])
    def crash() -> None:
        raise RuntimeError("secret internals")

    return router


@pytest.fixture
def probe_client(
    settings: Settings, engine: Engine, plugins: Plugins, admin_headers: dict[str, str]
):  # type: ignore[no-untyped-def]
    router = _probe_router()
    with throwaway_plugin(
        plugins, "probe", paved_actions=lambda: [PROBE], paved_routes=lambda: [router]
    ):
        app: FastAPI = create_app(settings, plugins=plugins, engine=engine)
        with TestClient(app, raise_server_exceptions=False, headers=admin_headers) as client:
            yield client


def test_fastapi_validation_errors_become_problems_naming_each_field(
    probe_client: TestClient,
) -> None:
    response = probe_client.post("/api/probe/things", json={"replicas": "many"})
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["type"] == "urn:paved:problem:invalid-input"
    assert problem["title"] == "Invalid input"
    assert problem["status"] == 422
    assert {(e["field"], e["message"]) for e in problem["errors"]} == {
        ("name", "missing"),
        ("replicas", "Input should be a valid integer, unable to parse string as an integer"),
    }
    assert {e["field"]: e["expected"] for e in problem["errors"]}["replicas"] == "a valid int"


def test_query_parameter_errors_name_the_parameter(client: TestClient) -> None:
    problem = client.get("/api/tasks", params={"limit": 0}).json()
    assert problem["status"] == 422
    assert problem["errors"][0]["field"] == "query.limit"


def test_service_errors_carry_their_field_problems(probe_client: TestClient) -> None:
    response = probe_client.post("/api/probe/things", json={"name": "taken", "replicas": 1})
    assert response.status_code == 422
    assert response.json()["errors"] == [
        {"field": "name", "message": "already used", "expected": "a name no thing has"}
    ]


def test_not_found_is_a_problem_for_clients_and_a_page_for_browsers(client: TestClient) -> None:
    api = client.get("/api/tasks/999")
    assert api.status_code == 404
    assert api.json()["detail"] == "there is no task 999"
    page = client.get("/tasks/999", headers={"Accept": "text/html"})
    assert page.status_code == 404
    assert page.headers["content-type"].startswith("text/html")
    assert "there is no task 999" in page.text
    assert '<a href="/">Back to the home page</a>' in page.text


def test_unknown_paths_and_methods_are_problems(client: TestClient) -> None:
    missing = client.get("/api/nothing-here")
    assert missing.json()["title"] == "Not Found"
    assert missing.json()["detail"] == "nothing is at /api/nothing-here"
    wrong_method = client.delete("/api/tasks")
    assert wrong_method.status_code == 405
    assert wrong_method.json()["detail"] == "DELETE is not allowed on /api/tasks"


def test_unexpected_errors_hide_internals_and_carry_the_request_id_everywhere(
    probe_client: TestClient,
) -> None:
    written = io.StringIO()
    handler = logging.StreamHandler(written)
    handler.setFormatter(JsonFormatter())
    logging.getLogger().addHandler(handler)
    try:
        response = probe_client.get("/api/probe/crash", headers={"X-Request-ID": "req-123"})
    finally:
        logging.getLogger().removeHandler(handler)
    assert response.status_code == 500
    assert "secret internals" not in response.text
    assert response.json()["request_id"] == "req-123"
    assert response.headers["X-Request-ID"] == "req-123"
    # The log line names the same request id, so the person's id finds the traceback.
    lines = [json.loads(line) for line in written.getvalue().splitlines()]
    error = next(line for line in lines if line["logger"] == "paved.errors")
    assert error["request_id"] == "req-123"
    assert "RuntimeError: secret internals" in error["traceback"]


def test_a_status_outside_the_standard_list_is_still_a_problem(
    settings: Settings, engine: Engine, plugins: Plugins, admin_headers: dict[str, str]
) -> None:
    from fastapi import HTTPException

    router = APIRouter()

    @router.get("/api/probe/gone", dependencies=[requires(PROBE)])
    def gone() -> None:
        raise HTTPException(status_code=499, detail="client closed the request")

    with throwaway_plugin(
        plugins, "probe", paved_actions=lambda: [PROBE], paved_routes=lambda: [router]
    ):
        app = create_app(settings, plugins=plugins, engine=engine)
        with TestClient(app, headers=admin_headers) as client:
            response = client.get("/api/probe/gone")
    assert response.status_code == 499
    assert response.json()["detail"] == "client closed the request"


def test_pages_that_answer_htmx_with_a_fragment_vary_on_hx_request(client: TestClient) -> None:
    full = client.get("/admin/plugins")
    fragment = client.get("/admin/plugins", headers={"HX-Request": "true"})
    for response in (full, fragment):
        assert "HX-Request" in [part.strip() for part in response.headers["Vary"].split(",")]
    assert "<html" in full.text
    assert "<html" not in fragment.text
    assert 'id="plugin-table"' in fragment.text


def test_only_the_newest_page_of_tasks_refreshes_itself(client: TestClient) -> None:
    assert 'hx-trigger="every 3s"' in client.get("/tasks").text
    assert 'hx-trigger="every 3s"' not in client.get("/tasks?before=100").text

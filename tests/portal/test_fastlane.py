"""The fast lane: a hot path's reads answered ahead of the framework for token callers the gate
already let through, and everything else left to the framework, so that what a caller sees
(answers, refusals, audit events, request ids, metrics) is the same either way."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from portal import Action, NotFound, Resource, facts_for, hot_path, requires
from portal.actions import HOME_READ, PLUGINS_READ
from portal.app import create_app
from portal.fastlane import FastLane, lane_of
from portal.gate import walk_routes
from portal.models import AuditEvent
from portal.plugins import Plugins
from portal.settings import Settings

from conftest import issue_secret
from factories import throwaway_plugin

ECHO = "/hot/{name}/echo"
SECRET = "/hot/{name}/secret"
WRITE = Action("portal.home.update", "Change the home page")  # not a read: never a lane


async def echo(name: str, request: Request) -> JSONResponse:
    if name == "missing":
        raise NotFound(f"there is no {name}")
    # The session middleware runs inside the fast lane: a request it saw took the framework.
    lane = "session" not in request.scope
    identity = request.state.identity
    return JSONResponse({"name": name, "caller": identity.ref, "lane": lane})


def hot_router() -> APIRouter:
    router = APIRouter()
    router.add_api_route(ECHO, echo, methods=["POST"], dependencies=[requires(HOME_READ)])
    router.add_api_route(SECRET, echo, methods=["GET"], dependencies=[requires(PLUGINS_READ)])
    return hot_path(router)


@pytest.fixture
def app(settings: Settings, engine: Engine, plugins: Plugins) -> Iterator[FastAPI]:
    with throwaway_plugin(plugins, "hot", paved_routes=lambda: [hot_router()]):
        yield create_app(settings, plugins=plugins, engine=engine)


def lanes(app: FastAPI) -> list[str]:
    (fast,) = [m for m in app.user_middleware if m.cls is FastLane]
    return [f"{lane.method} {lane.route.path}" for lane in fast.kwargs["lanes"]]


def denials(engine: Engine) -> list[AuditEvent]:
    with Session(engine) as session:
        query = select(AuditEvent).where(col(AuditEvent.outcome) == "denied")
        return list(session.exec(query).all())


def test_the_reads_of_hot_paths_have_lanes(app: FastAPI) -> None:
    assert sorted(lanes(app)) == [f"GET {SECRET}", f"POST {ECHO}", "POST /serve/{name}/invocations"]


def test_a_remembered_token_takes_the_lane_with_the_same_answer(
    app: FastAPI, engine: Engine
) -> None:
    secret = issue_secret(engine, roles=["ml_engineer"], user="user:default/alice")
    with TestClient(app, headers={"Authorization": f"Bearer {secret}"}) as client:
        first = client.post("/hot/churn/echo")  # the framework: the token is looked up
        second = client.post("/hot/churn/echo")  # remembered now: the lane
        metrics = client.get("/metrics", headers={"Authorization": ""}).text

    assert first.json() == {"name": "churn", "caller": "user:default/alice", "lane": False}
    assert second.json() == {"name": "churn", "caller": "user:default/alice", "lane": True}
    assert first.headers["X-Request-ID"] != second.headers["X-Request-ID"]
    counted = 'paved_http_requests_total{method="POST",route="/hot/{name}/echo",status="200"} 2.0'
    assert counted in metrics


def test_an_error_in_the_lane_is_the_same_problem_as_in_the_framework(
    app: FastAPI, engine: Engine
) -> None:
    secret = issue_secret(engine, roles=["ml_engineer"])
    with TestClient(app, headers={"Authorization": f"Bearer {secret}"}) as client:
        answers = [client.post("/hot/missing/echo") for _ in range(2)]

    bodies = [answer.json() for answer in answers]
    for body in bodies:
        body.pop("request_id")
    assert [answer.status_code for answer in answers] == [404, 404]
    assert bodies[0] == bodies[1]
    assert bodies[0]["detail"] == "there is no missing"


def test_a_denied_caller_is_refused_and_audited_by_the_framework_every_time(
    app: FastAPI, engine: Engine
) -> None:
    secret = issue_secret(engine, roles=["ml_engineer"])
    with TestClient(app, headers={"Authorization": f"Bearer {secret}"}) as client:
        client.post("/hot/churn/echo")  # the token is remembered from here on
        answers = [client.get("/hot/churn/secret") for _ in range(3)]

    assert [answer.status_code for answer in answers] == [403, 403, 403]
    assert all(answer.json()["action"] == "admin.plugins.read" for answer in answers)
    assert len(denials(engine)) == 3


def test_unknown_tokens_sessions_and_revoked_tokens_take_the_framework(
    app: FastAPI, engine: Engine, admin_headers: dict[str, str]
) -> None:
    secret = issue_secret(engine, roles=["ml_engineer"])
    with TestClient(app) as client:
        unknown = client.post("/hot/a/echo", headers={"Authorization": "Bearer pvd_nothing"})
        nobody = client.post("/hot/a/echo")
        client.post("/hot/a/echo", headers={"Authorization": f"Bearer {secret}"})
        (token,) = [
            t
            for t in client.get("/api/auth/tokens", headers=admin_headers).json()
            if t["roles"] == ["ml_engineer"]
        ]
        revoked = client.delete(f"/api/auth/tokens/{token['id']}", headers=admin_headers)
        after = client.post("/hot/a/echo", headers={"Authorization": f"Bearer {secret}"})

    assert (unknown.status_code, nobody.status_code) == (401, 401)
    assert revoked.status_code in (200, 204)
    assert after.status_code == 401


async def read_with_resource(name: str, request: Request) -> JSONResponse:
    return JSONResponse({})


def a_resource(name: str) -> Resource:
    return Resource(ref=name, kind="Thing")


async def read_with_a_number(name: int, request: Request) -> JSONResponse:
    return JSONResponse({})


def read_in_a_thread(name: str, request: Request) -> JSONResponse:
    return JSONResponse({})


@pytest.mark.parametrize(
    ("endpoint", "gate"),
    [
        (echo, requires(WRITE)),  # a change is audited: the framework's
        (read_with_resource, requires(HOME_READ, resource=a_resource)),
        (read_with_a_number, requires(HOME_READ)),  # the framework converts and checks it
        (read_in_a_thread, requires(HOME_READ)),
    ],
)
def test_routes_the_lane_cannot_answer_as_the_framework_would_have_none(
    endpoint: object, gate: object
) -> None:
    router = APIRouter()
    router.add_api_route("/hot/{name}", endpoint, methods=["POST"], dependencies=[gate])  # type: ignore[arg-type]
    (route,) = walk_routes(router.routes)

    assert lane_of(route) is None


def test_facts_for_other_actions_keep_the_lane_and_are_not_fetched(
    app: FastAPI, engine: Engine, plugins: Plugins
) -> None:
    asked: list[str] = []

    @facts_for("serving.deployment.create")
    def marked(action: str) -> dict[str, bool]:
        asked.append(action)
        return {"marked": True}

    def unmarked(action: str, engine: Engine) -> None:
        asked.append(f"unmarked {action}")

    secret = issue_secret(engine, roles=["ml_engineer"])
    with TestClient(app, headers={"Authorization": f"Bearer {secret}"}) as client:
        with throwaway_plugin(plugins, "facts", paved_policy_context=marked):
            client.post("/hot/churn/echo")
            kept = client.post("/hot/churn/echo").json()["lane"]
        with throwaway_plugin(plugins, "more_facts", paved_policy_context=unmarked):
            client.post("/hot/churn/echo")
            lost = client.post("/hot/churn/echo").json()["lane"]

    assert kept is True
    assert lost is False  # an unmarked implementation is asked about every action
    assert asked == [f"unmarked {HOME_READ.name}"] * 2

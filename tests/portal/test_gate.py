"""The policy gate on every route: who is asking, is it allowed and why, and the audit record."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from fastapi import APIRouter, Depends, FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from portal import Action, NotFound, Resource, requires
from portal.app import create_app
from portal.audit import verify_chain
from portal.gate import is_ungated, route_action, walk_routes
from portal.models import AuditEvent
from portal.plugins import Plugins
from portal.settings import ROLES, Settings

from conftest import ClientFactory, issue_secret
from factories import make_task, throwaway_plugin
from opa_server import serve_opa

PATH_PARAM = re.compile(r"\{[^}]+\}")


def _events(engine: Engine) -> list[AuditEvent]:
    with Session(engine) as session:
        return list(session.exec(select(AuditEvent).order_by(col(AuditEvent.id))).all())


@pytest.fixture
def assembled(
    settings: Settings, engine: Engine, installed_plugins: Callable[..., object]
) -> FastAPI:
    """The portal with every installed plugin plus a third-party one (lineage)."""
    installed_plugins("lineage")
    return create_app(settings, plugins=Plugins.discover(), engine=engine)


def _gated_requests(app: FastAPI) -> Iterator[tuple[str, str, str]]:
    """(method, concrete path, action) for every gated route and method of the app."""
    for route in walk_routes(app.routes):
        action = route_action(route)
        if action is None:
            assert is_ungated(route), route.path
            continue
        for method in sorted(getattr(route, "methods", None) or ["GET"]):
            if method == "HEAD":
                continue
            yield method, PATH_PARAM.sub("1", route.path), action.name


def test_every_gated_route_refuses_a_caller_nobody_signed_in(assembled: FastAPI) -> None:
    requests = list(_gated_requests(assembled))
    assert len(requests) > 20
    with TestClient(assembled) as anonymous:
        for method, path, action in requests:
            response = anonymous.request(method, path)
            assert response.status_code == 401, f"{method} {path} ({action})"
            assert response.json()["type"] == "urn:paved:problem:not-authenticated"


def test_every_gated_route_refuses_a_role_that_lacks_its_action(
    assembled: FastAPI, engine: Engine
) -> None:
    policy = assembled.state.policy
    clients: dict[str, TestClient] = {}
    checked = 0
    for method, path, action in _gated_requests(assembled):
        # The first role the policy refuses this action to; no role at all if every one has it.
        lacking = next(
            (
                role
                for role in ROLES
                if not policy.decide(
                    {
                        "action": action,
                        "user": {"ref": "user:default/x", "groups": [], "roles": [role]},
                        "resource": None,
                        "context": {},
                    }
                ).allow
            ),
            "",
        )
        if lacking not in clients:
            secret = issue_secret(engine, roles=[lacking] if lacking else [])
            clients[lacking] = TestClient(assembled, headers={"Authorization": f"Bearer {secret}"})
        response = clients[lacking].request(method, path)
        assert response.status_code == 403, f"{method} {path} ({action}) as {lacking or 'no role'}"
        problem = response.json()
        assert problem["action"] == action
        assert problem["reasons"]
        assert all(isinstance(reason, str) and reason for reason in problem["reasons"])
        checked += 1
    assert checked > 20
    denied = [event for event in _events(engine) if event.outcome == "denied"]
    assert len(denied) == checked  # every denial is on the record


def test_a_denial_explains_itself_to_clients_and_to_people(
    client_as: ClientFactory, engine: Engine
) -> None:
    auditor = client_as("auditor", user="user:default/audrey")
    response = auditor.get("/api/tasks")
    assert response.status_code == 403
    problem = response.json()
    assert (
        problem["detail"]
        == "You may not see tasks, their progress and their logs (portal.task.read)."
    )
    assert problem["reasons"] == ["none of your roles (auditor) allows portal.task.read"]

    page = auditor.get("/tasks", headers={"Accept": "text/html"})
    assert page.status_code == 403
    assert "You may not see tasks, their progress and their logs" in page.text
    assert "none of your roles (auditor) allows portal.task.read" in page.text
    assert "user:default/audrey" in page.text

    event, page_event = _events(engine)  # the API's denial and the page's
    assert page_event.detail["path"] == "/tasks"
    assert (event.actor, event.action, event.outcome, event.allowed) == (
        "user:default/audrey",
        "portal.task.read",
        "denied",
        False,
    )
    assert event.reasons == ["none of your roles (auditor) allows portal.task.read"]
    assert event.request_id == response.headers["X-Request-ID"]


def test_state_changes_are_audited_with_their_outcome_and_reads_are_not(
    client: TestClient, engine: Engine
) -> None:
    with Session(engine) as session:
        task = make_task(session, "portal.selfcheck")
    assert client.get(f"/api/tasks/{task.id}").status_code == 200
    assert _events(engine) == []

    cancelled = client.post(f"/api/tasks/{task.id}/cancel")
    assert cancelled.status_code == 200
    missing = client.post("/api/tasks/999/cancel")
    assert missing.status_code == 404

    succeeded, failed = _events(engine)
    assert (succeeded.action, succeeded.outcome, succeeded.allowed) == (
        "portal.task.cancel",
        "succeeded",
        True,
    )
    assert succeeded.actor == "user:default/test-admin"
    assert succeeded.reasons == ["your role admin allows portal.task.cancel"]
    assert succeeded.detail["path"] == f"/api/tasks/{task.id}/cancel"
    assert succeeded.request_id == cancelled.headers["X-Request-ID"]
    assert (failed.outcome, failed.detail["status"]) == ("failed", 404)
    assert "999" in failed.detail["error"]
    with Session(engine) as session:
        assert verify_chain(session).is_intact


def test_a_policy_engine_that_cannot_answer_denies_with_503_and_is_audited(
    settings: Settings, engine: Engine, plugins: Plugins, admin_headers: dict[str, str]
) -> None:
    with serve_opa() as opa:
        remote = settings.model_copy(
            update={"policy": settings.policy.model_copy(update={"engine_url": opa.url})}
        )
        with TestClient(
            create_app(remote, plugins=plugins, engine=engine), headers=admin_headers
        ) as client:
            assert client.get("/api/tasks").status_code == 200  # OPA allows the admin
            opa.delay = 1.0  # slower than the 0.5 s timeout
            slow = client.get("/api/tasks")
    assert slow.status_code == 503
    assert "did not answer in time" in slow.json()["detail"]
    [event] = _events(engine)
    assert event.outcome == "denied"
    assert "the policy engine could not decide" in event.reasons[0]


def test_plugins_add_facts_the_policy_decides_on(
    settings: Settings,
    engine: Engine,
    installed_plugins: Callable[..., object],
    admin_headers: dict[str, str],
    tmp_path: Path,
) -> None:
    installed_plugins("lineage")
    from fixture_plugins import lineage

    rules = tmp_path / "lineage_rules"
    rules.mkdir()
    (rules / "frozen.rego").write_text(
        "package paved.authz\n\nimport rego.v1\n\n"
        'denials contains "the lineage graph is frozen for the audit" if {\n'
        "\tinput.context.lineage.frozen\n}\n"
    )
    with_rules = settings.model_copy(
        update={"policy": settings.policy.model_copy(update={"dirs": [rules]})}
    )
    app = create_app(with_rules, plugins=Plugins.discover(), engine=engine)
    with TestClient(app, headers=admin_headers) as client:
        assert client.post("/api/lineage/edges").status_code == 201
        lineage.facts["frozen"] = True
        try:
            frozen = client.post("/api/lineage/edges")
            lineage.facts["broken"] = True
            broken = client.post("/api/lineage/edges")
        finally:
            lineage.facts.clear()
            lineage.facts["frozen"] = False
        assert client.get("/api/tasks").status_code == 200  # other actions are not affected
    assert frozen.status_code == 403
    assert frozen.json()["reasons"] == ["the lineage graph is frozen for the audit"]
    assert broken.status_code == 503
    assert "plugin lineage could not give the policy its facts" in broken.json()["detail"]
    assert app.state.plugins.records["lineage"].status == "degraded"


def test_a_browser_without_a_session_is_sent_to_sign_in_and_brought_back(
    anonymous_client: TestClient,
) -> None:
    page = anonymous_client.get(
        "/tasks?status=failed", headers={"Accept": "text/html"}, follow_redirects=False
    )
    assert page.status_code == 303
    assert page.headers["location"] == "/auth/login?next=%2Ftasks%3Fstatus%3Dfailed"
    partial = anonymous_client.get("/admin/plugins", headers={"HX-Request": "true"})
    assert partial.status_code == 401
    assert partial.headers["HX-Redirect"].startswith("/auth/login?next=")


@pytest.mark.parametrize(
    "authorization",
    ["Bearer pvd_not-a-real-token", "Bearer ", "Basic dXNlcjpwYXNz", "pvd_without_scheme"],
)
def test_a_malformed_or_unknown_credential_is_401(
    anonymous_client: TestClient, authorization: str
) -> None:
    response = anonymous_client.get("/api/tasks", headers={"Authorization": authorization})
    assert response.status_code == 401


def test_the_gate_sees_the_token_holder_and_its_groups(
    client_as: ClientFactory,
) -> None:
    engineer = client_as("ml_engineer", user="user:default/alice", groups=["group:default/fraud"])
    me = engineer.get("/api/auth/me")
    assert me.status_code == 200
    assert me.json() == {
        "ref": "user:default/alice",
        "groups": ["group:default/fraud"],
        "roles": ["ml_engineer"],
        "name": "alice",
        "via": "token",
    }
    assert json.loads(engineer.get("/api/tasks").text) == []


def test_a_resource_is_loaded_once_the_caller_is_known_and_ownership_is_decided_on_it(
    settings: Settings, engine: Engine, plugins: Plugins, tmp_path: Path
) -> None:
    delete = Action("probe.thing.delete", "Delete a thing")
    owners = {"scorer": "group:default/fraud"}
    loaded: list[str] = []

    def thing(name: str) -> Resource:
        loaded.append(name)
        if name not in owners:
            raise NotFound(f"there is no thing {name}")
        return Resource(ref=f"thing:default/{name}", kind="Thing", owner=owners[name])

    router = APIRouter()

    @router.delete("/api/probe/things/{name}", dependencies=[requires(delete, resource=thing)])
    # A default, not Annotated: the string annotation could not see the local ``thing``.
    def delete_thing(target: Resource = Depends(thing)) -> dict[str, str]:
        return {"deleted": target.ref}

    rules = tmp_path / "probe_rules"
    rules.mkdir()
    grant = {"actions": [delete.name]}
    (rules / "data.json").write_text(
        json.dumps({"paved": {"roles": {"ml_engineer": grant, "data_scientist": grant}}})
    )
    with throwaway_plugin(
        plugins,
        "probe",
        paved_actions=lambda: [delete],
        paved_routes=lambda: [router],
        paved_policy_dirs=lambda: [rules],
    ):
        app = create_app(settings, plugins=plugins, engine=engine)

        def as_(role: str, user: str, group: str) -> TestClient:
            secret = issue_secret(engine, roles=[role], user=user, groups=[group])
            return TestClient(app, headers={"Authorization": f"Bearer {secret}"})

        with (
            TestClient(app) as anonymous,
            as_("ml_engineer", "user:default/alice", "group:default/fraud") as alice,
            as_("data_scientist", "user:default/dana", "group:default/churn") as dana,
        ):
            nobody = anonymous.delete("/api/probe/things/missing")
            assert loaded == []  # 401 before anything about the thing is looked up
            with as_("auditor", "user:default/audrey", "group:default/audit") as audrey:
                unable = audrey.delete("/api/probe/things/missing")
            assert loaded == []  # a role without the action learns nothing of the thing
            missing = alice.delete("/api/probe/things/missing")
            other_team = dana.delete("/api/probe/things/scorer")
            loaded.clear()
            own = alice.delete("/api/probe/things/scorer")

    assert nobody.status_code == 401
    assert unable.status_code == 403
    assert unable.json()["reasons"] == ["none of your roles (auditor) allows probe.thing.delete"]
    assert missing.status_code == 404
    assert own.json() == {"deleted": "thing:default/scorer"}
    assert loaded == ["scorer"]  # the gate and the route shared one load
    assert other_team.status_code == 403
    assert other_team.json()["reasons"] == [
        "thing:default/scorer belongs to group:default/fraud and you are not a member, "
        "so you cannot delete it"
    ]
    unable_event, denied, succeeded = _events(engine)
    assert (unable_event.actor, unable_event.resource, unable_event.outcome) == (
        "user:default/audrey",
        None,
        "denied",
    )
    assert (denied.actor, denied.resource, denied.outcome) == (
        "user:default/dana",
        "thing:default/scorer",
        "denied",
    )
    assert (succeeded.actor, succeeded.resource, succeeded.outcome) == (
        "user:default/alice",
        "thing:default/scorer",
        "succeeded",
    )

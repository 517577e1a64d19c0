"""Sessions, local demo sign-in, CSRF, API tokens over HTTP and from the command line."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from portal.app import create_app
from portal.auth import sessions
from portal.models import ApiToken, AuditEvent
from portal.plugins import Plugins
from portal.settings import Settings

from conftest import ClientFactory
from factories import make_task
from processes import paved, settings_env

CSRF_INPUT = re.compile(r'name="csrf_token" value="([^"]+)"')


def _with_auth(settings: Settings, **auth: object) -> Settings:
    return settings.model_copy(update={"auth": settings.auth.model_copy(update=auth)})


@pytest.fixture
def demo_settings(settings: Settings) -> Settings:
    return _with_auth(settings, local=settings.auth.local.model_copy(update={"enabled": True}))


@pytest.fixture
def browser(demo_settings: Settings, engine: Engine, plugins: Plugins) -> Iterator[TestClient]:
    """A cookie-keeping client of a portal with local sign-in on (as `make run` has it)."""
    app = create_app(demo_settings, plugins=plugins, engine=engine)
    with TestClient(app, headers={"Accept": "text/html"}, follow_redirects=False) as client:
        yield client


def sign_in(client: TestClient, user: str, *, next_path: str = "/") -> str:
    """Sign in through the local sign-in page; returns the page's CSRF token."""
    page = client.get("/auth/login", params={"next": next_path})
    assert page.status_code == 200
    token = CSRF_INPUT.search(page.text)
    assert token is not None
    response = client.post(
        "/auth/local", data={"user": user, "csrf_token": token.group(1), "next": next_path}
    )
    assert response.status_code == 303, response.text
    home = client.get("/")
    found = CSRF_INPUT.search(home.text)
    assert found is not None
    return found.group(1)


def _events(engine: Engine) -> list[AuditEvent]:
    with Session(engine) as session:
        return list(session.exec(select(AuditEvent).order_by(col(AuditEvent.id))).all())


def test_local_sign_in_lands_signed_in_with_roles_on_the_home_page(
    browser: TestClient, engine: Engine
) -> None:
    login = browser.get("/auth/login")
    assert "Demo sign-in is on" in login.text  # the banner is on every page
    for name in ("Alice (ML engineer, fraud)", "Root (platform admin)", "Audrey (auditor)"):
        assert name in login.text
    sign_in(browser, "alice", next_path="/tasks?status=failed")
    home = browser.get("/")
    assert home.status_code == 200
    assert "Signed in as Alice (ML engineer, fraud)" in home.text
    assert "user:default/alice" in home.text
    assert "ml_engineer" in home.text
    assert "Demo sign-in is on" in home.text
    me = browser.get("/api/auth/me").json()
    assert me == {
        "ref": "user:default/alice",
        "groups": ["group:default/fraud"],
        "roles": ["ml_engineer"],
        "name": "Alice (ML engineer, fraud)",
        "via": "session",
    }
    [event] = _events(engine)
    assert (event.actor, event.action, event.outcome) == (
        "user:default/alice",
        "auth.session.create",
        "succeeded",
    )


def test_sign_in_goes_back_to_where_the_person_was_and_only_to_this_portal(
    browser: TestClient,
) -> None:
    page = browser.get("/auth/login", params={"next": "/tasks?status=failed"})
    token = CSRF_INPUT.search(page.text)
    assert token is not None
    back = browser.post(
        "/auth/local",
        data={"user": "bob", "csrf_token": token.group(1), "next": "/tasks?status=failed"},
    )
    assert back.headers["location"] == "/tasks?status=failed"
    for hostile in ("https://evil.example/", "//evil.example/x", "/\\evil.example", "javascript:x"):
        assert sessions.safe_next(hostile) == "/"
        away = browser.post(
            "/auth/local", data={"user": "bob", "csrf_token": token.group(1), "next": hostile}
        )
        # sign_in renewed the CSRF token, so read it again for the next round
        assert away.status_code in (303, 200, 403)
        if away.status_code == 303:
            assert away.headers["location"] == "/"
        page = browser.get("/auth/login")
        token = CSRF_INPUT.search(page.text)
        assert token is not None


def test_the_session_cookie_is_signed_http_only_and_same_site_lax(
    browser: TestClient, demo_settings: Settings, engine: Engine, plugins: Plugins
) -> None:
    cookie = browser.get("/auth/login").headers.get("set-cookie") or ""
    assert cookie.startswith(f"{sessions.COOKIE_NAME}=")
    assert "httponly" in cookie.lower()
    assert "samesite=lax" in cookie.lower()
    assert "secure" not in cookie.lower()  # plain http on loopback
    sign_in(browser, "dana")

    forged = browser.cookies.get(sessions.COOKIE_NAME)
    assert forged is not None
    browser.cookies.clear()
    browser.cookies.set(sessions.COOKIE_NAME, "x" + forged)
    assert browser.get("/api/auth/me").status_code == 401

    behind_https = demo_settings.model_copy(update={"public_url": "https://paved.example"})
    app = create_app(behind_https, plugins=plugins, engine=engine)
    with TestClient(app, base_url="https://paved.example") as secure:
        response = secure.get("/auth/login")
        assert "secure" in (response.headers.get("set-cookie") or "").lower()


def test_sessions_end_after_the_idle_and_the_absolute_limits(
    browser: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    sign_in(browser, "alice")
    assert browser.get("/api/auth/me").status_code == 200
    started = time.time()
    # 7 hours of activity, one request an hour: within the 8 h idle limit each time.
    for hour in range(1, 8):
        monkeypatch.setattr(sessions.time, "time", lambda hour=hour: started + hour * 3600)
        assert browser.get("/api/auth/me").status_code == 200
    monkeypatch.setattr(sessions.time, "time", lambda: started + 7 * 3600 + 8 * 3600 + 60)
    idle = browser.get("/api/auth/me")
    assert idle.status_code == 401
    assert "without activity" in idle.json()["detail"]

    sign_in(browser, "alice")
    signed_in_at = started + 7 * 3600 + 8 * 3600 + 60
    for hour in range(1, 24):
        monkeypatch.setattr(sessions.time, "time", lambda h=hour: signed_in_at + h * 3600)
        assert browser.get("/api/auth/me").status_code == 200
    monkeypatch.setattr(sessions.time, "time", lambda: signed_in_at + 24 * 3600 + 60)
    ended = browser.get("/api/auth/me")
    assert ended.status_code == 401
    assert "24 hours after sign-in" in ended.json()["detail"]


def test_state_changes_from_a_browser_need_the_csrf_token(
    browser: TestClient, engine: Engine
) -> None:
    csrf = sign_in(browser, "root")
    with Session(engine) as session:
        task_id = make_task(session, "portal.selfcheck").id
        other_id = make_task(session, "portal.selfcheck").id
    forged = browser.post(f"/tasks/{task_id}/cancel")
    assert forged.status_code == 403
    assert "CSRF" in forged.text
    wrong = browser.post(f"/tasks/{task_id}/cancel", data={"csrf_token": "guess"})
    assert wrong.status_code == 403
    by_form = browser.post(f"/tasks/{task_id}/cancel", data={"csrf_token": csrf})
    assert by_form.status_code == 303
    by_header = browser.post(
        f"/api/tasks/{other_id}/cancel", headers={"X-CSRF-Token": csrf, "Accept": "*/*"}
    )
    assert by_header.status_code == 200
    outcomes = [(e.action, e.outcome) for e in _events(engine) if e.action != "auth.session.create"]
    assert outcomes == [
        ("portal.task.cancel", "denied"),
        ("portal.task.cancel", "denied"),
        ("portal.task.cancel", "succeeded"),
        ("portal.task.cancel", "succeeded"),
    ]


def test_sign_out_ends_the_session_and_is_recorded(browser: TestClient, engine: Engine) -> None:
    csrf = sign_in(browser, "bob")
    refused = browser.post("/auth/logout")  # no CSRF token: not signed out
    assert refused.status_code == 403
    assert browser.get("/api/auth/me").status_code == 200
    out = browser.post("/auth/logout", data={"csrf_token": csrf})
    assert out.status_code == 303
    assert out.headers["location"] == "/auth/login?signed_out=true"
    assert "You are signed out" in browser.get(out.headers["location"]).text
    assert browser.get("/api/auth/me").status_code == 401
    assert [e.action for e in _events(engine)] == ["auth.session.create", "auth.session.delete"]


def test_local_sign_in_is_off_unless_enabled(
    settings: Settings, engine: Engine, plugins: Plugins
) -> None:
    with TestClient(
        create_app(settings, plugins=plugins, engine=engine), headers={"Accept": "text/html"}
    ) as client:
        page = client.get("/auth/login")
        assert page.status_code == 503
        assert "No way to sign in is configured" in page.text
        assert "Demo sign-in is on" not in page.text
        assert client.post("/auth/local", data={"user": "root"}).status_code == 404


def test_an_unknown_local_user_is_named_in_the_error(browser: TestClient) -> None:
    page = browser.get("/auth/login")
    token = CSRF_INPUT.search(page.text)
    assert token is not None
    response = browser.post(
        "/auth/local",
        data={"user": "mallory", "csrf_token": token.group(1)},
        headers={"Accept": "application/json"},
    )
    assert response.status_code == 422
    [problem] = response.json()["errors"]
    assert problem["field"] == "user"
    assert problem["expected"] == "one of alice, bob, dana, audrey, root"


# -- API tokens -------------------------------------------------------------------------


def test_tokens_over_the_api_are_shown_once_hashed_revocable_and_never_escalate(
    client_as: ClientFactory, app: FastAPI, engine: Engine
) -> None:
    alice = client_as("ml_engineer", user="user:default/alice", groups=["group:default/fraud"])
    created = alice.post("/api/auth/tokens", json={"name": "ci", "expires": "30d"})
    assert created.status_code == 201
    body = created.json()
    secret = body["secret"]
    assert secret.startswith("pvd_")
    assert body["token"]["roles"] == ["ml_engineer"]
    assert body["token"]["groups"] == ["group:default/fraud"]
    with Session(engine) as session:
        stored = session.get(ApiToken, body["token"]["id"])
        assert stored is not None
        assert secret not in (stored.secret_hash, stored.hint)

    with TestClient(app, headers={"Authorization": f"Bearer {secret}"}) as ci:
        assert ci.get("/api/auth/me").json()["ref"] == "user:default/alice"
    listed = alice.get("/api/auth/tokens").json()
    mine = next(t for t in listed if t["id"] == body["token"]["id"])
    assert mine["last_used_at"] is not None
    assert "secret" not in mine
    assert "secret_hash" not in mine

    escalate = alice.post("/api/auth/tokens", json={"name": "x", "roles": ["admin"]})
    assert escalate.status_code == 422
    assert escalate.json()["errors"][0]["field"] == "roles"
    bad_expiry = alice.post("/api/auth/tokens", json={"name": "x", "expires": "soon"})
    assert bad_expiry.json()["errors"][0]["field"] == "expires"

    revoked = alice.delete(f"/api/auth/tokens/{body['token']['id']}")
    assert revoked.status_code == 200
    assert revoked.json()["revoked_at"] is not None
    with TestClient(app, headers={"Authorization": f"Bearer {secret}"}) as ci:
        refused = ci.get("/api/auth/me")
        unknown = ci.get("/api/auth/me", headers={"Authorization": "Bearer pvd_unknown"})
    assert refused.status_code == unknown.status_code == 401
    assert refused.json()["detail"] == unknown.json()["detail"]

    bob = client_as("ml_engineer", user="user:default/bob")
    assert bob.delete(f"/api/auth/tokens/{body['token']['id']}").status_code == 404
    actions = [(e.actor, e.action, e.outcome) for e in _events(engine)]
    assert ("user:default/alice", "auth.token.create", "succeeded") in actions
    assert ("user:default/alice", "auth.token.revoke", "succeeded") in actions
    assert ("user:default/bob", "auth.token.revoke", "failed") in actions


def test_the_account_page_creates_a_token_and_shows_it_once(browser: TestClient) -> None:
    csrf = sign_in(browser, "dana")
    created = browser.post("/account/tokens", data={"name": "notebook", "csrf_token": csrf})
    assert created.status_code == 200
    secret = re.search(r"(pvd_[A-Za-z0-9_-]+)", created.text)
    assert secret is not None
    again = browser.get("/account")
    assert "notebook" in again.text
    assert secret.group(1) not in again.text  # shown once


def test_paved_token_create_makes_the_first_admin_token(settings: Settings, engine: Engine) -> None:
    env = settings_env(settings)
    made = paved(
        "token",
        "create",
        "--user",
        "user:default/alice",
        "--role",
        "admin",
        "--expires",
        "30d",
        env=env,
    )
    assert made.returncode == 0, made.stderr
    secret = made.stdout.strip()
    assert secret.startswith("pvd_")
    assert "shown only this once" in made.stderr
    app = create_app(settings, plugins=Plugins.discover(), engine=engine)
    with TestClient(app, headers={"Authorization": f"Bearer {secret}"}) as admin:
        assert admin.get("/api/auth/me").json()["roles"] == ["admin"]
        assert admin.get("/api/plugins").status_code == 200
    listed = paved("token", "list", env=env)
    assert "user:default/alice" in listed.stdout
    assert secret not in listed.stdout
    wrong = paved("token", "create", "--user", "alice", "--role", "admin", env=env)
    assert wrong.returncode == 1
    assert "--user: 'alice' is not a user ref" in wrong.stderr
    token_id = listed.stdout.split("\t")[0]
    assert paved("token", "revoke", token_id, env=env).returncode == 0
    # A portal that has not seen the token (this one remembers it for auth.token_cache_seconds).
    replica = create_app(settings, plugins=Plugins.discover(), engine=engine)
    with TestClient(replica, headers={"Authorization": f"Bearer {secret}"}) as admin:
        assert admin.get("/api/auth/me").status_code == 401
    actions = [(e.action, e.actor.startswith("cli:")) for e in _events(engine)]
    assert actions == [("auth.token.create", True), ("auth.token.revoke", True)]

"""OIDC sign-in against a real provider (oidc-provider from npm, started by the tests).

The portal is served on a real port and driven by an httpx client that keeps cookies
and fills in the provider's own login form, as a browser without JavaScript would.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import httpx
import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from portal.app import create_app
from portal.auth.oidc import identity_from_claims
from portal.models import AuditEvent
from portal.plugins import Plugins
from portal.settings import Settings

from oidc_portal import (
    GROUP_MAP,
    ROLE_MAP,
    OidcPortal,
    oidc_settings,
    provider_and_portal,
)
from oidc_provider import password_for
from processes import free_port

CSRF_INPUT = re.compile(r'name="csrf_token" value="([^"]+)"')


@pytest.fixture
def oidc_portal(settings: Settings, engine: Engine, plugins: Plugins) -> Iterator[OidcPortal]:
    with provider_and_portal(settings, engine, plugins) as portal:
        yield portal


def sign_in_at_provider(client: httpx.Client, start: str, user: str) -> httpx.Response:
    """Follow the portal to the provider, fill in its login form, follow back."""
    login_form = client.get(start)
    assert login_form.status_code == 200, login_form.text
    assert "Sign in - Test OIDC Provider" in login_form.text
    action = re.search(r'action="(/interaction/[^"]+/login)"', login_form.text)
    assert action is not None
    provider_root = f"{login_form.url.scheme}://{login_form.url.netloc.decode()}"
    return client.post(
        provider_root + action.group(1),
        data={"username": user, "password": password_for(user)},
    )


def test_sign_in_with_the_provider_maps_groups_to_roles_and_catalog_groups(
    oidc_portal: OidcPortal, engine: Engine
) -> None:
    with httpx.Client(follow_redirects=True, headers={"Accept": "text/html"}) as browser:
        landed = sign_in_at_provider(browser, f"{oidc_portal.url}/tasks?status=failed", "alice")
        assert landed.status_code == 200
        assert str(landed.url) == f"{oidc_portal.url}/tasks?status=failed"
        me = browser.get(f"{oidc_portal.url}/api/auth/me").json()
        home = browser.get(f"{oidc_portal.url}/")
    assert me == {
        "ref": "user:default/alice",
        "groups": ["group:default/ml-engineers", "group:default/fraud"],
        "roles": ["ml_engineer"],
        "name": "Alice Example",
        "via": "session",
    }
    assert "Signed in as Alice Example" in home.text
    assert "ml_engineer" in home.text
    with Session(engine) as session:
        [event] = session.exec(select(AuditEvent).order_by(col(AuditEvent.id))).all()
    assert (event.actor, event.action, event.outcome) == (
        "user:default/alice",
        "auth.session.create",
        "succeeded",
    )
    assert event.detail["roles"] == ["ml_engineer"]


def test_a_wrong_password_stays_at_the_provider(oidc_portal: OidcPortal) -> None:
    with httpx.Client(follow_redirects=True, headers={"Accept": "text/html"}) as browser:
        form = browser.get(f"{oidc_portal.url}/auth/login")
        action = re.search(r'action="(/interaction/[^"]+/login)"', form.text)
        assert action is not None
        refused = browser.post(
            oidc_portal.provider.issuer + action.group(1),
            data={"username": "alice", "password": "wrong"},
        )
        assert "Invalid username or password" in refused.text or 'role="alert"' in refused.text
        assert browser.get(f"{oidc_portal.url}/api/auth/me").status_code == 401


def test_a_forged_callback_is_refused_with_a_clear_error(oidc_portal: OidcPortal) -> None:
    with httpx.Client(follow_redirects=False, headers={"Accept": "text/html"}) as browser:
        forged = browser.get(
            f"{oidc_portal.url}/auth/oidc/callback", params={"code": "stolen", "state": "guess"}
        )
    assert forged.status_code == 401
    assert "the sign-in provider refused" in forged.text or "could not be verified" in forged.text


def test_sign_out_also_ends_the_session_at_the_provider(oidc_portal: OidcPortal) -> None:
    with httpx.Client(follow_redirects=True, headers={"Accept": "text/html"}) as browser:
        sign_in_at_provider(browser, f"{oidc_portal.url}/", "bob")
        home = browser.get(f"{oidc_portal.url}/")
        csrf = CSRF_INPUT.search(home.text)
        assert csrf is not None
        out = browser.post(
            f"{oidc_portal.url}/auth/logout",
            data={"csrf_token": csrf.group(1)},
            follow_redirects=False,
        )
        assert out.status_code == 303
        end_session = out.headers["location"]
        assert end_session.startswith(oidc_portal.provider.issuer)
        assert "id_token_hint=" in end_session
        assert "post_logout_redirect_uri=" in end_session
        assert browser.get(f"{oidc_portal.url}/api/auth/me").status_code == 401
        # The provider asks to confirm (its page submits itself with JavaScript).
        confirm = browser.get(end_session)
        xsrf = re.search(r'name="xsrf" value="([^"]+)"', confirm.text)
        action = re.search(r'action="([^"]+)"', confirm.text)
        assert xsrf is not None
        assert action is not None
        back = browser.post(
            httpx.URL(end_session).join(action.group(1)),
            data={"xsrf": xsrf.group(1), "logout": "yes"},
        )
        assert str(back.url).startswith(f"{oidc_portal.url}/auth/login?signed_out=true")
        assert "You are signed out" in back.text
        # Signing in again asks for the password: the provider's session is gone too.
        again = browser.get(f"{oidc_portal.url}/auth/login?provider=oidc")
        assert "Sign in - Test OIDC Provider" in again.text


def test_an_unreachable_issuer_is_a_clear_error_on_the_sign_in_page_and_in_readyz(
    settings: Settings, engine: Engine, plugins: Plugins
) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    auth = settings.auth.model_copy(
        update={
            "oidc": settings.auth.oidc.model_copy(
                update={"issuer": dead, "client_id": "paved", "client_secret": SecretStr("x")}
            )
        }
    )
    app = create_app(settings.model_copy(update={"auth": auth}), plugins=plugins, engine=engine)
    with TestClient(app, headers={"Accept": "text/html"}) as client:
        page = client.get("/auth/login")
        ready = client.get("/readyz")
    assert page.status_code == 503
    assert f"the sign-in provider {dead} is unavailable: it cannot be reached" in page.text
    assert "Traceback" not in page.text
    assert ready.status_code == 503
    reason = ready.json()["checks"]["oidc"]["reason"]
    assert reason.startswith(f"the sign-in provider {dead} is unavailable")
    assert "auth.oidc.issuer" in reason


def test_an_issuer_that_names_another_issuer_is_refused(
    settings: Settings, engine: Engine, plugins: Plugins
) -> None:
    # Reached as localhost, the provider says it is 127.0.0.1: a misconfiguration.
    with provider_and_portal(settings, engine, plugins) as portal:
        wrong = portal.provider.issuer.replace("127.0.0.1", "localhost")
        app = create_app(
            oidc_settings(settings, portal.provider, issuer=wrong), plugins=plugins, engine=engine
        )
        with TestClient(app, headers={"Accept": "text/html"}) as client:
            page = client.get("/auth/login")
            ready = client.get("/readyz").json()
    assert page.status_code == 503
    assert "the provider says its issuer is" in page.text
    assert "the provider says its issuer is" in ready["checks"]["oidc"]["reason"]


@pytest.mark.parametrize(
    ("claims", "expected"),
    [
        (
            {
                "sub": "x1",
                "preferred_username": "Carol.Smith",
                "groups": ["team-leads", "team-fraud"],
            },
            (
                "user:default/carol.smith",
                ("team_lead",),
                ("group:default/team-leads", "group:default/fraud"),
            ),
        ),
        ({"sub": "x2", "email": "dave@example.com"}, ("user:default/dave", (), ())),
        (
            {"sub": "Only Sub", "groups": "auditors"},
            ("user:default/only-sub", ("auditor",), ("group:default/auditors",)),
        ),
    ],
)
def test_claims_become_a_catalog_user_with_mapped_roles_and_groups(
    settings: Settings,
    claims: dict[str, object],
    expected: tuple[str, tuple[str, ...], tuple[str, ...]],
) -> None:
    auth = settings.auth.model_copy(update={"role_map": ROLE_MAP, "group_map": GROUP_MAP})
    identity = identity_from_claims(claims, auth)
    assert (identity.ref, identity.roles, identity.groups) == expected

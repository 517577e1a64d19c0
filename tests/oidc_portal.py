"""A portal signed in through the test OIDC provider: both started on loopback ports.

with provider_and_portal(settings, engine, plugins) as portal:
    portal.url, portal.provider.issuer
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass

import pytest
from pydantic import SecretStr
from sqlalchemy.engine import Engine

from portal.app import create_app
from portal.plugins import Plugins
from portal.settings import Settings

from oidc_provider import OidcProvider, OidcProviderError, node_modules_installed, start_provider
from processes import free_port, serve_in_thread

ROLE_MAP = {
    "ml-engineers": ["ml_engineer"],
    "team-leads": ["team_lead"],
    "data-scientists": ["data_scientist"],
    "auditors": ["auditor"],
    "platform-admins": ["admin"],
}
GROUP_MAP = {"team-fraud": "group:default/fraud", "team-churn": "group:default/churn"}


@dataclass
class OidcPortal:
    url: str
    provider: OidcProvider


def oidc_settings(
    settings: Settings, provider: OidcProvider, *, issuer: str | None = None
) -> Settings:
    auth = settings.auth.model_copy(
        update={
            "oidc": settings.auth.oidc.model_copy(
                update={
                    "issuer": issuer or provider.issuer,
                    "client_id": provider.client_id,
                    "client_secret": SecretStr(provider.client_secret),
                }
            ),
            "role_map": ROLE_MAP,
            "group_map": GROUP_MAP,
        }
    )
    return settings.model_copy(update={"auth": auth})


@contextmanager
def provider_and_portal(
    settings: Settings, engine: Engine, plugins: Plugins, **overrides: str
) -> Iterator[OidcPortal]:
    if not node_modules_installed():
        pytest.skip("the test OIDC provider needs `npm ci --prefix tests/oidc` (make test does it)")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with ExitStack() as stack:
        try:
            provider = stack.enter_context(
                start_provider(
                    redirect_uris=[f"{url}/auth/oidc/callback"],
                    post_logout_redirect_uri=f"{url}/auth/login?signed_out=true",
                )
            )
        except OidcProviderError as exc:
            pytest.fail(str(exc))
        app = create_app(
            oidc_settings(settings, provider, **overrides), plugins=plugins, engine=engine
        )
        stack.enter_context(serve_in_thread(app, port))
        yield OidcPortal(url, provider)

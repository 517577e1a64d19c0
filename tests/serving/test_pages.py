"""Serving's pages as a signed-in person uses them: the Serving tab of the churn Model with its
Deploy form, a deployment's page with its alerts, figures, drift and history, and the forms
that deploy, set the canary's share, promote and roll back, each with the session's CSRF
token. Denials and bad input show their reasons on the page."""

from __future__ import annotations

import html
import json
import re
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from serving.conftest import FEATURES, MODEL, Register, run_tasks, training_rows
from sqlalchemy.engine import Engine

from plugins.serving import service
from plugins.serving.runtimes import DeploymentState, ServingRuntime
from plugins.serving.traffic import Traffic
from portal.plugins import Plugins
from portal.settings import Settings
from portal.worker import Worker

from factories import throwaway_plugin

STAGING = "churn-staging"
PAGE = f"/serving/deployments/{STAGING}"
TAB = "/serving/tabs/model/default/churn"
INSTANT = "instant"
CSRF_INPUT = re.compile(r'name="csrf_token" value="([^"]+)"')


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """Local sign-in on, so that forms are posted by a person signed in with a session; and
    deployments on the instant runtime unless their project names another."""
    local = settings.auth.local.model_copy(update={"enabled": True})
    auth = settings.auth.model_copy(update={"local": local})
    serving = settings.serving.model_copy(update={"default_runtime": INSTANT})
    return settings.model_copy(update={"auth": auth, "serving": serving})


class Browser:
    """A signed-in person's browser: it keeps the session cookie and the page's CSRF token."""

    def __init__(self, client: TestClient, csrf: str) -> None:
        self.client = client
        self.csrf = csrf

    def get(self, path: str) -> Any:
        return self.client.get(path)

    def submit(self, path: str, **fields: Any) -> Any:
        """Post a form as a page of the portal does, with its CSRF token."""
        return self.client.post(path, data={"csrf_token": self.csrf, **fields})


SignIn = Callable[[str], Browser]


@pytest.fixture
def sign_in(app: FastAPI) -> Iterator[SignIn]:
    """``sign_in("alice")``: a browser signed in as a demo user (alice is an ML engineer of
    the fraud team, which owns churn; dana is a data scientist of another team)."""
    with ExitStack() as browsers:

        def make(user: str) -> Browser:
            client = TestClient(app, headers={"Accept": "text/html"}, follow_redirects=False)
            browsers.enter_context(client)
            login = client.get("/auth/login")
            token = CSRF_INPUT.search(login.text)
            assert token is not None
            signed = client.post("/auth/local", data={"user": user, "csrf_token": token.group(1)})
            assert signed.status_code == 303, signed.text
            found = CSRF_INPUT.search(client.get("/").text)
            assert found is not None
            return Browser(client, found.group(1))

        yield make


@pytest.fixture(autouse=True)
def instant(app: FastAPI, plugins: Plugins, settings: Settings, project: Path) -> Iterator[None]:
    """The churn project served by a runtime that answers at once: these tests look at the
    pages and their forms, not at model servers (tests/serving/test_deployments.py starts
    real ones). Its project names no runtime, so the settings' default, this one, serves it
    (a project file may name only the built-in runtimes)."""

    def apply(
        state: DeploymentState, _settings: Settings, log: Callable[[str], None]
    ) -> dict[str, str]:
        log("nothing to start: the instant runtime")
        return {spec.version: "http://127.0.0.1:9/" for spec in state.kept_warm}

    runtime = ServingRuntime(INSTANT, "Answers at once", apply, lambda *_: None)
    project_file = project / "paved-project.yaml"
    project_file.write_text(project_file.read_text().replace("  runtime: local\n", ""))
    with throwaway_plugin(plugins, INSTANT, paved_serving_runtimes=lambda settings: [runtime]):
        # As the portal's start-up collects them (a client started before this fixture).
        app.state.serving_runtimes = service.available_runtimes(plugins, settings)
        yield


def traffic_of(app: FastAPI) -> Traffic:
    traffic: Traffic = app.state.serving_traffic
    return traffic


def text_of(page: str) -> str:
    """The page's words, without tags or runs of spaces, to look for sentences in."""
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", page)).split())


def test_the_serving_tab_lists_the_models_deployments_and_offers_its_versions(
    project: Path, register: Register, sign_in: SignIn
) -> None:
    alice = sign_in("alice")
    empty = alice.get(TAB)
    assert empty.status_code == 200, empty.text
    assert "Not deployed anywhere yet." in empty.text
    assert "No versions of <code>churn</code> to deploy" in empty.text

    first, second = register(), register()
    fields = {"model": MODEL, "version": first, "environment": "staging"}
    assert alice.submit("/serving/deployments", **fields).status_code == 303
    tab = alice.get(TAB)
    assert f'<a href="{PAGE}">{STAGING}</a>' in tab.text
    assert "bringing up v1" in tab.text
    assert re.findall(r'<option value="(\d+)">', tab.text) == [second, first]
    assert '<option value="staging">staging</option>' in tab.text
    assert '<option value="production">production</option>' in tab.text
    assert 'name="canary_percent"' in tab.text
    assert f'value="{alice.csrf}"' in tab.text


def test_deploying_from_the_tab_leads_to_the_deployments_page(
    project: Path, register: Register, sign_in: SignIn
) -> None:
    version = register()
    alice = sign_in("alice")
    fields = {"model": MODEL, "version": version, "environment": "staging"}
    deployed = alice.submit("/serving/deployments", **fields)
    assert deployed.status_code == 303, deployed.text
    assert deployed.headers["location"] == PAGE
    page = alice.get(PAGE)
    assert page.status_code == 200, page.text
    assert 'class="status status-deploying"' in page.text
    words = text_of(page.text)
    assert "Bringing up v1: what serves now keeps serving until it answers." in words
    task = re.search(r'<a href="/tasks/(\d+)">task (\d+) and its log</a>', page.text)
    assert task is not None, page.text
    assert f"POST http://testserver/serve/{STAGING}/invocations" in words


def test_the_forms_set_the_canary_share_promote_and_roll_back(
    register: Register, sign_in: SignIn, deployer: Worker, client: TestClient
) -> None:
    first, second = register(), register()
    alice = sign_in("alice")
    alice.submit("/serving/deployments", model=MODEL, version=first, environment="staging")
    run_tasks(deployer)
    canary = alice.client.post(
        "/serving/deployments",
        data={
            "csrf_token": alice.csrf, "model": MODEL, "version": second,
            "environment": "staging", "canary_percent": "10",
        },
        headers={"HX-Request": "true"},
    )  # fmt: skip
    assert canary.status_code == 204, canary.text
    assert canary.headers["HX-Redirect"] == PAGE
    run_tasks(deployer)

    listed = text_of(alice.get("/serving").text)
    assert f"{STAGING} churn staging v{first} v{second} · 10% serving" in listed
    tab = alice.get(TAB).text
    assert f'action="{PAGE}/rollback"' in tab
    assert f'action="{PAGE}/promote"' in tab
    page = alice.get(PAGE).text
    assert f"v{second} · 10% of traffic" in text_of(page)
    assert 'name="canary_percent"' in page

    share = alice.submit(f"{PAGE}/canary", canary_percent="40", back=PAGE)
    assert share.status_code == 303, share.text
    assert share.headers["location"] == PAGE
    assert f"v{second} · 40% of traffic" in text_of(alice.get(PAGE).text)

    promoted = alice.submit(f"{PAGE}/promote", back="/catalog/model/default/churn?tab=serving")
    assert promoted.headers["location"] == "/catalog/model/default/churn?tab=serving"
    run_tasks(deployer)  # stops nothing: the previous version stays warm
    words = text_of(alice.get(PAGE).text)
    assert f"Stable v{second}" in words
    assert f"Previous v{first}, kept warm for a rollback" in words

    rolled = alice.submit(f"{PAGE}/rollback", back="//elsewhere.example")
    assert rolled.headers["location"] == "/"  # never to another site
    after = client.get(f"/api/serving/deployments/{STAGING}").json()
    assert (after["stable_version"], after["canary_version"]) == (first, None)
    assert [event["kind"] for event in reversed(after["events"])] == [
        "deploy", "canary", "percent", "promote", "rollback"
    ]  # fmt: skip
    history = text_of(alice.get(PAGE).text)
    assert f"rollback user:default/alice v{first} v{second} rolled back to v{first}" in history
    assert "Rollback" not in text_of(alice.get(TAB).text)  # nothing left to roll back to


def test_the_deployment_page_shows_alerts_figures_and_drift(
    app: FastAPI, engine: Engine, register: Register, sign_in: SignIn, deployer: Worker
) -> None:
    alice = sign_in("alice")  # before reading the router: a client starting restarts it
    alice.submit("/serving/deployments", model=MODEL, version=register(), environment="staging")
    run_tasks(deployer)
    calm = alice.get(PAGE)
    assert 'id="alerts"' not in calm.text
    assert "No requests in the last 60 minutes." in calm.text
    assert "Alerts when the stable version's error rate is above 5% or its p99 above 1000 ms" in (
        text_of(calm.text)
    )

    # What the router records of the requests it forwards: shifted amounts, a fifth of the
    # answers failed, some slow.
    traffic = traffic_of(app)
    shifted = training_rows(400, seed=12, shift=25)
    body = json.dumps({"dataframe_split": {"columns": list(FEATURES), "data": shifted}})
    assert traffic.features(STAGING).observe(body.encode(), "application/json")
    for index in range(20):
        latency, failed = (1500.0 if index % 2 else 40.0), index % 5 == 0
        traffic.metrics.for_version(STAGING, "1").record(latency, failed)
        traffic.minutes.record(STAGING, "1", latency, failed)
    traffic.minutes.flush(engine)

    page = alice.get(PAGE)
    assert page.status_code == 200, page.text
    alerts = re.search(r'<article id="alerts".*?</article>', page.text, re.S)
    assert alerts is not None, page.text
    said = text_of(alerts.group(0))
    assert "3 alerts" in said
    assert re.search(r"Drift: amount has a PSI of \d+\.\d\d over 400 observed values, above", said)
    assert "Errors: v1 failed 20.0% of 20 requests in the last 60 s; monitoring allows 5%." in said
    assert "Latency: v1 answered with a p99 of 1500 ms in the last 60 s; monitoring allows" in said
    shown = alice.get(f"/api/serving/deployments/{STAGING}").json()  # the API says the same
    assert [alert.split(":")[0] for alert in shown["alerts"]] == ["Drift", "Errors", "Latency"]
    assert all(alert in said for alert in shown["alerts"])
    words = text_of(page.text)
    assert "v1 stable 20 20.0% 40 ms 1500 ms" in words  # the window's figures
    assert re.search(r"v1 20 4 20\.0% \d+ ms 1500 ms", words)  # the minute's, without charts
    drift = re.search(r'<tr data-feature="amount">.*?</tr>', page.text, re.S)
    assert drift is not None
    assert re.fullmatch(r"amount \d+\.\d{3} 400 0\.2 drifting", text_of(drift.group(0)))
    assert 'data-metrics="/api/serving/deployments/churn-staging/metrics?minutes=60"' in page.text
    assert '<script src="/static/serving-charts.js" defer></script>' in page.text


def test_denials_and_bad_input_show_their_reasons_on_the_page(
    register: Register, sign_in: SignIn, deployer: Worker
) -> None:
    alice, dana = sign_in("alice"), sign_in("dana")
    alice.submit("/serving/deployments", model=MODEL, version=register(), environment="staging")
    run_tasks(deployer)

    denied = dana.submit(f"{PAGE}/rollback")
    assert denied.status_code == 403
    words = text_of(denied.text)
    assert "You may not send a deployment's traffic back to its previous version" in words
    assert "none of your roles (data_scientist) allows serving.deployment.rollback" in words

    production = alice.submit(
        "/serving/deployments", model=MODEL, version="1", environment="production"
    )
    assert production.status_code == 403
    assert "version 1 of churn is not approved: a team lead of group:default/fraud must" in (
        text_of(production.text)
    )

    too_much = alice.submit(f"{PAGE}/canary", canary_percent="150")
    assert too_much.status_code == 422
    assert "canary_percent" in too_much.text
    assert "a number at most 100" in text_of(too_much.text)
    no_canary = alice.submit(f"{PAGE}/canary", canary_percent="20")
    assert no_canary.status_code == 409
    assert "deployment churn-staging has no canary" in text_of(no_canary.text)
    nothing = alice.submit(f"{PAGE}/rollback")
    assert nothing.status_code == 409
    assert "has no canary and no previous version running to roll back to" in text_of(nothing.text)

    forged = alice.client.post(f"{PAGE}/rollback", data={})
    assert forged.status_code == 403
    assert "CSRF token" in text_of(forged.text)
    moon = alice.submit("/serving/deployments", model=MODEL, version="1", environment="moon")
    assert moon.status_code == 422
    assert "'moon' is not an environment" in text_of(moon.text)

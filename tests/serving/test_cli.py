"""``paved deploy``, ``rollback``, ``status`` and ``logs`` against a running portal: progress
while a deploy comes up, and exit codes a CI job can use."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from serving.conftest import DAVE, MODEL, Register
from sqlalchemy.engine import Engine

from plugins.serving.local import stop_servers
from portal.app import create_app
from portal.plugins import Plugins
from portal.settings import Settings

from conftest import ALICE, FRAUD, SEARCH, issue_secret
from processes import paved, serve_in_thread


@pytest.fixture
def servers_stop(working_settings: Settings) -> Iterator[None]:
    yield
    stop_servers(working_settings)


@pytest.mark.slow
def test_deploy_rollback_status_and_logs_from_a_terminal(
    working_settings: Settings, engine: Engine, plugins: Plugins, project: Path,
    register: Register, servers_stop: None,
) -> None:  # fmt: skip
    first, second = register(), register()
    alice = issue_secret(engine, roles=["ml_engineer"], user=ALICE, groups=[FRAUD])
    dave = issue_secret(engine, roles=["data_scientist"], user=DAVE, groups=[SEARCH])
    app = create_app(working_settings, plugins=plugins, engine=engine)
    with serve_in_thread(app) as url:
        as_alice = {"PAVED_URL": url, "PAVED_TOKEN": alice}

        deployed = paved("deploy", MODEL, "--version", first, "--env", "staging", env=as_alice)
        assert deployed.returncode == 0, deployed.stderr
        assert deployed.stdout.strip() == f"{url}/serve/churn-staging/invocations"
        assert f"starting the model server of churn v{first}" in deployed.stderr
        assert f"churn-staging: v{first} takes all traffic" in deployed.stderr

        canary = paved(
            "deploy", MODEL, "-v", second, "--env", "staging", "--canary", "10", env=as_alice
        )
        assert canary.returncode == 0, canary.stderr
        listed = paved("status", env=as_alice)
        assert listed.returncode == 0
        assert "churn-staging" in listed.stdout
        assert f"v{second} 10%" in listed.stdout
        detail = paved("status", "churn-staging", env=as_alice)
        assert f"canary   v{second} 10%" in detail.stdout
        assert "canary" in detail.stdout

        rolled = paved("rollback", "churn-staging", env=as_alice)
        assert rolled.returncode == 0, rolled.stderr
        assert f"canary v{second} rolled back; v{first} takes all traffic" in rolled.stdout

        metrics = app.state.serving_traffic.metrics.for_version("churn-staging", first)
        for index in range(20):  # what the router records of answers, a quarter of them failed
            metrics.record(40.0, index % 4 == 0)
        alerted = paved("status", "churn-staging", env=as_alice)
        assert (
            f"  ! Errors: v{first} failed 25.0% of 20 requests in the last 60 s; monitoring "
            "allows 5%." in alerted.stdout.splitlines()
        )

        logs = paved("logs", "churn-staging", env=as_alice)
        assert logs.returncode == 0
        assert "bringing churn-staging to" in logs.stdout

        unknown = paved("deploy", MODEL, "--version", "99", "--env", "staging", env=as_alice)
        assert unknown.returncode == 2
        bad_env = paved("deploy", MODEL, "--version", first, "--env", "moon", env=as_alice)
        assert bad_env.returncode == 2
        assert "environment" in bad_env.stderr
        denied = paved("deploy", MODEL, "--version", first, "--env", "staging",
                       env={"PAVED_URL": url, "PAVED_TOKEN": dave})  # fmt: skip
        assert denied.returncode == 3
        assert "serving.deployment.create" in denied.stderr
        nothing = paved("rollback", "churn-staging", env=as_alice)
        assert nothing.returncode == 2
        assert "has no canary and no previous version running" in nothing.stderr

    unreachable = paved("status", env=as_alice)
    assert unreachable.returncode == 4

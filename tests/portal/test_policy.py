"""The policy engine: Paved's Rego, in-process and on an OPA server, failing closed."""

from __future__ import annotations

import json
import threading
import time
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from portal.app import create_app
from portal.errors import ConfigurationError, EngineUnavailable
from portal.plugins import Plugins, PluginStatus
from portal.policy import (
    POLICY_DIR,
    Decision,
    InProcessEngine,
    PolicySource,
    PolicyWatcher,
    RemoteEngine,
    run_policy_tests,
)
from portal.settings import Settings

from factories import throwaway_plugin, wait_for
from opa_server import serve_opa
from processes import paved

ALICE = {"ref": "user:default/alice", "groups": ["group:default/fraud"], "roles": ["ml_engineer"]}


def ask(
    action: str, user: dict[str, Any] = ALICE, resource: dict[str, Any] | None = None
) -> dict[str, Any]:
    return {"action": action, "user": user, "resource": resource, "context": {}}


def engine_for(*folders: Path) -> InProcessEngine:
    return InProcessEngine(lambda: PolicySource.read([POLICY_DIR, *folders]))


@pytest.mark.parametrize(
    "result", run_policy_tests(PolicySource.read([POLICY_DIR])), ids=lambda r: r.name
)
def test_rego_unit_tests_pass(result: Any) -> None:
    assert result.passed, result.error


def test_the_rego_suite_is_not_empty() -> None:
    assert len(run_policy_tests(PolicySource.read([POLICY_DIR]))) >= 8


def test_in_process_decisions_carry_their_reasons() -> None:
    engine = engine_for()
    assert engine.decide(ask("registry.model.register")) == Decision(
        True, ("your role ml_engineer allows registry.model.register",)
    )
    assert engine.decide(ask("audit.log.read")) == Decision(
        False, ("none of your roles (ml_engineer) allows audit.log.read",)
    )


def test_each_thread_gets_its_own_engine_and_the_same_answers() -> None:
    engine = engine_for()
    answers: list[bool] = []

    def decide_many() -> None:
        for _ in range(200):
            answers.append(engine.decide(ask("registry.model.register")).allow)

    threads = [threading.Thread(target=decide_many) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert answers == [True] * 800


def write_policy(folder: Path, body: str, name: str = "extra.rego") -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text(f"package paved.authz\n\nimport rego.v1\n\n{body}\n")


def test_reload_picks_up_changes_and_keeps_the_old_policy_when_the_new_one_is_broken(
    tmp_path: Path,
) -> None:
    extra = tmp_path / "policies"
    write_policy(extra, "")
    engine = engine_for(extra)
    assert engine.decide(ask("registry.model.register")).allow
    write_policy(extra, 'denials contains "registrations are frozen this week" if true')
    engine.reload()
    assert engine.decide(ask("registry.model.register")) == Decision(
        False, ("registrations are frozen this week",)
    )
    write_policy(extra, "denials contains if {")  # does not compile
    with pytest.raises(ConfigurationError, match="does not compile"):
        engine.reload()
    assert engine.decide(ask("registry.model.register")).reasons == (
        "registrations are frozen this week",
    )


def test_the_watcher_reloads_when_a_policy_file_changes(tmp_path: Path) -> None:
    extra = tmp_path / "policies"
    write_policy(extra, "")
    engine = engine_for(extra)
    watcher = PolicyWatcher(engine, [extra], every=0.05)
    watcher.start()
    try:
        time.sleep(0.1)
        write_policy(extra, 'denials contains "maintenance window" if true')
        wait_for(lambda: not engine.decide(ask("portal.home.read")).allow, timeout=5)
    finally:
        watcher.stop()


@pytest.mark.parametrize(
    ("rule", "expected"),
    [
        ('decision := {"allow": "yes"}', 'the policy answered {"allow": "yes"}; expected'),
        ("decision := 1 / 0", "the policy engine failed"),
    ],
)
def test_a_malformed_or_failing_policy_fails_closed(
    tmp_path: Path, rule: str, expected: str
) -> None:
    folder = tmp_path / "only"
    folder.mkdir()
    (folder / "authz.rego").write_text(f"package paved.authz\n\nimport rego.v1\n\n{rule}\n")
    engine = InProcessEngine(lambda: PolicySource.read([folder]))
    with pytest.raises(EngineUnavailable, match=expected.split(";")[0].replace("{", r"\{")):
        engine.decide(ask("portal.home.read"))


def test_the_remote_engine_asks_an_opa_server_through_its_data_api() -> None:
    with serve_opa() as opa, closing(RemoteEngine(opa.url, timeout=2)) as engine:
        assert engine.decide(ask("registry.model.register")).allow
        assert not engine.decide(ask("audit.log.read")).allow
        assert opa.requests == 2


def test_a_slow_unreachable_or_empty_opa_server_denies_with_503() -> None:
    with serve_opa() as opa, closing(RemoteEngine(opa.url, timeout=0.1)) as slow:
        opa.delay = 0.5
        with pytest.raises(EngineUnavailable, match="did not answer in time"):
            slow.decide(ask("portal.home.read"))
    with (
        closing(RemoteEngine("http://127.0.0.1:1", timeout=0.5)) as unreachable,
        pytest.raises(EngineUnavailable, match="failed"),
    ):
        unreachable.decide(ask("portal.home.read"))
    # An OPA server without Paved's policies: the decision rule is undefined there.
    with (
        serve_opa([Path(__file__).parent]) as empty,
        closing(RemoteEngine(empty.url, timeout=2)) as engine,
        pytest.raises(EngineUnavailable, match=r"has no data\.paved\.authz\.decision"),
    ):
        engine.decide(ask("portal.home.read"))


def test_plugins_add_policy_folders_and_a_broken_one_is_left_out(
    settings: Settings, engine: Engine, plugins: Plugins, tmp_path: Path
) -> None:
    frozen, broken = tmp_path / "frozen", tmp_path / "broken"
    write_policy(
        frozen,
        'denials contains "deploys are frozen" if input.action == "serving.deployment.create"',
    )
    write_policy(broken, "denials contains if {")
    with (
        throwaway_plugin(plugins, "freeze", paved_policy_dirs=lambda: [frozen]),
        throwaway_plugin(plugins, "typo", paved_policy_dirs=lambda: [broken]),
    ):
        app = create_app(settings, plugins=plugins, engine=engine)
        assert app.state.policy.decide(ask("serving.deployment.create")).reasons == (
            "deploys are frozen",
        )
        assert app.state.policy.decide(ask("registry.model.register")).allow
        assert plugins.records["typo"].status == PluginStatus.DEGRADED
        assert "its policies were not loaded: policy" in plugins.records["typo"].problems[0]


def test_a_plugins_data_adds_actions_to_a_role_without_repeating_the_core(
    tmp_path: Path,
) -> None:
    folder = tmp_path / "lineage"
    folder.mkdir()
    (folder / "data.json").write_text(
        json.dumps({"paved": {"roles": {"ml_engineer": {"actions": ["lineage.graph.read"]}}}})
    )
    engine = engine_for(folder)
    assert engine.decide(ask("lineage.graph.read")).allow
    assert engine.decide(ask("registry.model.register")).allow  # the core's grants remain


def test_readyz_reports_an_unreachable_policy_engine(
    settings: Settings, engine: Engine, plugins: Plugins, admin_headers: dict[str, str]
) -> None:
    remote = settings.model_copy(
        update={
            "policy": settings.policy.model_copy(
                update={"engine_url": "http://127.0.0.1:1", "timeout": 0.5}
            )
        }
    )
    with TestClient(
        create_app(remote, plugins=plugins, engine=engine), headers=admin_headers
    ) as client:
        response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["checks"]["policy"]["reason"].startswith(
        "OPA at http://127.0.0.1:1 failed"
    )
    assert response.json()["checks"]["database"]["ok"] is True


def test_an_invalid_engine_url_is_a_settings_error() -> None:
    from portal.settings import load_settings

    with pytest.raises(ConfigurationError, match=r"policy\.engine_url"):
        load_settings(policy={"engine_url": "opa:8181"})


def test_paved_policy_test_and_eval_from_the_command_line(tmp_path: Path) -> None:
    from conftest import REPO_DIR

    written = [
        line
        for folder in (
            REPO_DIR / "policies",
            REPO_DIR / "scaffolder" / "policies",
            *(REPO_DIR / "plugins").glob("*/policies"),
        )
        for path in folder.glob("*_test.rego")
        for line in path.read_text().splitlines()
        if line.startswith("test_")
    ]
    count = len(written)
    assert count > 10
    assert f"{count} of {count} policy tests passed" in paved("policy", "test").stderr
    extra = tmp_path / "extra"
    extra.mkdir()
    (extra / "broken_test.rego").write_text(
        "package paved.extra_test\n\nimport rego.v1\n\ntest_fails if false\n"
    )
    failing = paved("policy", "test", env={"PAVED_POLICY__DIRS": json.dumps([str(extra)])})
    assert failing.returncode == 1
    assert "broken_test.rego test_fails" in failing.stderr
    (tmp_path / "input.json").write_text(json.dumps(ask("audit.log.read")))
    decided = paved("policy", "eval", "--input", str(tmp_path / "input.json"))
    assert decided.returncode == 0, decided.stderr
    assert json.loads(decided.stdout) == {
        "allow": False,
        "reasons": ["none of your roles (ml_engineer) allows audit.log.read"],
    }

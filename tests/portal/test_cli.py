"""The ``paved`` command line, run as a person runs it: a separate process."""

import json
import time
from collections.abc import Callable
from pathlib import Path

import httpx2 as httpx
import pytest

from portal.settings import Settings

from processes import free_port, paved, settings_env, start_paved


def test_every_command_has_help() -> None:
    for command in (
        ["--help"],
        ["up", "--help"],
        ["db", "upgrade", "--help"],
        ["db", "current", "--help"],
        ["config", "show", "--help"],
        ["plugins", "list", "--help"],
        ["audit", "verify", "--help"],
        ["worker", "--help"],
    ):
        result = paved(*command)
        assert result.returncode == 0, command
        assert result.stdout.startswith("Usage: paved"), command


def test_an_unknown_option_is_a_usage_error() -> None:
    result = paved("up", "--prot", "80")
    assert result.returncode == 2
    assert "No such option '--prot'" in result.stderr
    assert "Traceback" not in result.stderr


def test_an_invalid_database_url_is_reported_without_its_password() -> None:
    result = paved("db", "upgrade", env={"PAVED_DATABASE_URL": "mysql://app:hunter2@db/x"})
    assert result.returncode == 2
    assert "got 'mysql://app:***@db/x'" in result.stderr
    assert "hunter2" not in result.stderr


def test_commands_that_need_no_plugin_never_import_one(
    installed_plugins: Callable[..., dict[str, str]],
) -> None:
    result = paved("config", "show", env=installed_plugins("broken_import"))
    assert result.returncode == 0
    assert result.stderr.startswith("# read from defaults")
    assert "broken_import" not in result.stderr


def test_an_invalid_setting_stops_before_serving_with_exit_code_2() -> None:
    result = paved("up", env={"PAVED_PORT": "eighty"})
    assert result.returncode == 2
    assert "port (PAVED_PORT): got 'eighty'" in result.stderr
    assert "valid integer" in result.stderr
    assert "Traceback" not in result.stderr


def test_an_unreachable_database_is_one_clear_line() -> None:
    result = paved("db", "upgrade", env={"PAVED_DATABASE_URL": "postgresql://paved@127.0.0.1:1/x"})
    assert result.returncode == 1
    assert "cannot reach the database postgresql+psycopg://paved@127.0.0.1:1/x" in result.stderr
    assert "Traceback" not in result.stderr


def test_db_upgrade_migrates_then_reports_the_database_current(settings: Settings) -> None:
    env = settings_env(settings)
    first = paved("db", "upgrade", env=env)
    assert first.returncode == 0, first.stderr
    assert "migrated from an empty database to" in first.stderr
    again = paved("db", "upgrade", env=env)
    assert "already at revision" in again.stderr
    current = paved("db", "current", env=env)
    assert current.returncode == 0
    lines = current.stdout.split()
    assert lines[1] == lines[3]  # current: X / head: X


def test_config_show_prints_effective_settings_with_the_password_masked(tmp_path: Path) -> None:
    (tmp_path / "paved.yaml").write_text("port: 9000\ndatabase_url: postgresql://al:pw@db/p\n")
    result = paved("config", "show", "--json", env={"PAVED_HOST": "0.0.0.0"}, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    shown = json.loads(result.stdout)
    assert (shown["port"], shown["host"]) == (9000, "0.0.0.0")
    assert shown["database_url"] == "postgresql+psycopg://al:***@db/p"
    assert "pw" not in result.stdout.replace("paved", "")


def test_plugins_list_shows_the_core_and_exits_0_when_all_are_healthy(settings: Settings) -> None:
    result = paved("plugins", "list", "--json", env=settings_env(settings))
    assert result.returncode == 0, result.stderr
    core = next(p for p in json.loads(result.stdout) if p["name"] == "core")
    assert core["status"] == "ok"
    assert core["distribution"] == "paved"
    assert "paved_routes" in core["hooks"]


def test_plugins_list_names_a_broken_plugin_and_exits_1(
    settings: Settings, installed_plugins: Callable[..., dict[str, str]]
) -> None:
    env = {**settings_env(settings), **installed_plugins("broken_import", "broken_hooks")}
    result = paved("plugins", "list", env=env)
    assert result.returncode == 1
    assert "broken_import" in result.stdout
    assert "failed" in result.stdout
    assert "unhealthy plugins: broken_hooks, broken_import" in result.stderr
    assert "Traceback" not in result.stdout + result.stderr


def test_plugins_add_their_own_commands(installed_plugins: Callable[..., dict[str, str]]) -> None:
    env = installed_plugins("lineage")
    assert "lineage" in paved("--help", env=env).stdout
    result = paved("lineage", "model:default/churn", env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "model:default/churn <- dataset:default/transactions\n"


@pytest.mark.slow
def test_up_creates_the_database_serves_and_stops_cleanly_on_ctrl_c(tmp_path: Path) -> None:
    import signal

    port = free_port()
    process = start_paved(
        "up",
        "--port",
        str(port),
        "--data-dir",
        str(tmp_path / "state"),
        "--demo",
        env={"PAVED_LOG_FORMAT": "json"},
        cwd=tmp_path,
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/readyz").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "the portal did not become ready"
            time.sleep(0.05)
        home = httpx.get(
            f"http://127.0.0.1:{port}/",
            headers={"X-Request-ID": "cli-test-1", "Accept": "text/html"},
        )
        assert home.status_code == 303  # nobody signed in: to the sign-in page
        assert home.headers["location"] == "/auth/login?next=%2F"
        assert (tmp_path / "state" / "paved.db").is_file()
    finally:
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=20)
    assert process.returncode == 0
    assert "database created at revision" in stderr
    assert "demo data loaded" in stderr
    access = [
        json.loads(line)
        for line in stderr.splitlines()
        if line.startswith("{") and '"paved.access"' in line
    ]
    assert any(entry["request_id"] == "cli-test-1" and entry["route"] == "/" for entry in access)
    assert "task worker" in stderr
    assert "stopped" in stderr


def test_worker_drain_runs_what_is_queued(settings: Settings) -> None:
    env = settings_env(settings)
    assert paved("db", "upgrade", env=env).returncode == 0
    from sqlmodel import Session

    from portal.db import create_database_engine

    from factories import make_task

    engine = create_database_engine(settings)
    with Session(engine) as session:
        make_task(session, "portal.selfcheck")
        make_task(session, "portal.selfcheck")
    result = paved("worker", "--drain", env=env)
    assert result.returncode == 0, result.stderr
    assert "queue drained: 2 tasks run" in result.stderr

"""Settings: file, environment, precedence, and errors that name key, value and expectation."""

from pathlib import Path

import pytest

from portal.errors import ConfigurationError
from portal.settings import load_settings


def test_defaults_use_sqlite_under_the_data_dir() -> None:
    settings = load_settings()
    assert settings.sqlalchemy_url.drivername == "sqlite"
    assert settings.sqlalchemy_url.database == str(Path(".paved") / "paved.db")
    assert settings.base_url == "http://127.0.0.1:8000"


def test_yaml_file_is_read_and_environment_wins(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "paved.yaml").write_text("port: 9000\nhost: 0.0.0.0\ntasks:\n  max_attempts: 7\n")
    monkeypatch.setenv("PAVED_PORT", "9100")
    monkeypatch.setenv("PAVED_TASKS__POLL_INTERVAL", "2.5")
    settings = load_settings()
    assert settings.port == 9100
    assert settings.host == "0.0.0.0"
    assert settings.tasks.max_attempts == 7
    assert settings.tasks.poll_interval == 2.5


def test_paved_config_names_another_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    other = tmp_path / "elsewhere.yaml"
    other.write_text("log_level: WARNING\n")
    monkeypatch.setenv("PAVED_CONFIG", str(other))
    assert load_settings().log_level == "warning"


def test_paved_config_naming_a_missing_file_is_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PAVED_CONFIG", "/nowhere/paved.yaml")
    with pytest.raises(ConfigurationError, match=r"/nowhere/paved\.yaml"):
        load_settings()


def test_invalid_values_name_the_key_the_value_and_what_was_expected(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PAVED_PORT", "eighty")
    monkeypatch.setenv("PAVED_DATABASE_URL", "mysql://db/paved")
    with pytest.raises(ConfigurationError) as raised:
        load_settings()
    message = str(raised.value)
    assert "port (PAVED_PORT): got 'eighty'; Input should be a valid integer" in message
    assert "database_url (PAVED_DATABASE_URL): got 'mysql://db/paved'" in message
    assert "expected a URL like sqlite:///" in message
    assert {problem.field.split()[0] for problem in raised.value.errors} == {"port", "database_url"}


def test_a_heartbeat_timeout_shorter_than_two_heartbeats_is_refused() -> None:
    with pytest.raises(ConfigurationError) as raised:
        load_settings(tasks={"heartbeat_interval": 10, "heartbeat_timeout": 15})
    assert "tasks (PAVED_TASKS)" in str(raised.value)
    assert "heartbeat_timeout (15.0) must be at least twice heartbeat_interval (10.0)" in str(
        raised.value
    )


def test_unknown_key_in_the_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "paved.yaml").write_text("prot: 9000\n")
    with pytest.raises(ConfigurationError, match="prot: unknown setting"):
        load_settings()


def test_malformed_yaml_is_a_configuration_error(tmp_path: Path) -> None:
    (tmp_path / "paved.yaml").write_text("port: [9000\n")
    with pytest.raises(ConfigurationError, match="cannot read the settings"):
        load_settings()


@pytest.mark.parametrize(
    ("given", "driver"),
    [
        ("postgresql://alice@db.internal:5432/paved", "postgresql+psycopg"),
        ("postgres://alice@db.internal/paved", "postgresql+psycopg"),
        ("sqlite:///var/paved.db", "sqlite"),
    ],
)
def test_plain_database_urls_get_paveds_driver(given: str, driver: str) -> None:
    assert load_settings(database_url=given).sqlalchemy_url.drivername == driver


def test_masked_settings_hide_the_database_password() -> None:
    shown = load_settings(database_url="postgresql://alice:hunter2@db/paved").masked()
    assert "hunter2" not in str(shown)
    assert shown["database_url"] == "postgresql+psycopg://alice:***@db/paved"


def test_every_setting_has_a_description() -> None:
    from pydantic import BaseModel

    from portal.settings import Settings

    def undocumented(model: type[BaseModel], prefix: str = "") -> list[str]:
        missing = []
        for name, field in model.model_fields.items():
            annotation = field.annotation
            if isinstance(annotation, type) and issubclass(annotation, BaseModel):
                missing += undocumented(annotation, f"{prefix}{name}.")
            elif not field.description:
                missing.append(prefix + name)
        return missing

    assert undocumented(Settings) == []


def test_the_committed_settings_reference_is_up_to_date() -> None:
    from portal.settings import render_reference

    from conftest import REPO_DIR

    committed = (REPO_DIR / "docs" / "settings.md").read_text()
    assert committed == render_reference(), "run `paved config reference > docs/settings.md`"


def test_local_sign_in_is_refused_off_loopback_in_one_readable_line() -> None:
    with pytest.raises(ConfigurationError) as raised:
        load_settings(host="0.0.0.0", auth={"local": {"enabled": True}})
    assert "  settings: auth.local.enabled lets anyone sign in as anyone" in str(raised.value)
    assert load_settings(auth={"local": {"enabled": True}}).auth.local.users[0].name == "alice"

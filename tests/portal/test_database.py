"""The database: migrations that match the models on SQLite and PostgreSQL, one commit per
request, and clear errors when the database cannot be reached."""

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from fastapi import APIRouter
from fastapi.testclient import TestClient
from sqlalchemy import inspect
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

import catalog.models  # noqa: F401  (the catalog tables are part of the schema)
import plugins.registry.models  # and the built-in plugins'
import plugins.serving.models
import plugins.training.models  # noqa: F401
import scaffolder.models  # noqa: F401  (and the scaffolder's)
from portal import Action, requires, schema
from portal.app import create_app
from portal.audit import verify_chain
from portal.db import SessionDep, check_reachable, create_database_engine
from portal.errors import EngineUnavailable
from portal.models import AuditEvent, PortalMeta, metadata
from portal.plugins import Plugins
from portal.settings import Settings, load_settings

from conftest import BOTH_BACKENDS
from factories import throwaway_plugin


@BOTH_BACKENDS
def test_migrations_create_exactly_the_tables_the_models_describe(
    backend: str, engine: Engine
) -> None:
    assert engine.dialect.name == ("postgresql" if backend == "postgres" else "sqlite")
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        assert compare_metadata(context, metadata) == []
    assert schema.is_at_head(engine)


@BOTH_BACKENDS
def test_migrations_go_down_and_up_again(backend: str, engine: Engine) -> None:
    schema.downgrade(engine, "base")
    assert schema.current_revision(engine) is None
    assert set(inspect(engine).get_table_names()) == {"alembic_version"}
    schema.upgrade(engine)
    assert {"task", "task_log", "portal_meta"} <= set(inspect(engine).get_table_names())


def test_the_head_paved_computes_is_alembics_head() -> None:
    from alembic.script import ScriptDirectory

    alembic_head = ScriptDirectory.from_config(schema.alembic_config()).get_current_head()
    assert schema.head_revision() == alembic_head is not None


def test_a_fresh_database_is_empty_until_upgraded(settings: Settings) -> None:
    engine = create_database_engine(settings)
    assert schema.is_empty(engine)
    assert schema.current_revision(engine) is None
    schema.upgrade(engine)
    assert not schema.is_empty(engine)
    assert schema.current_revision(engine) == schema.head_revision()


def test_an_unreachable_database_is_named_with_the_reason() -> None:
    engine = create_database_engine(
        load_settings(database_url="postgresql://paved:secret@127.0.0.1:1/paved")
    )
    with pytest.raises(EngineUnavailable) as raised:
        check_reachable(engine)
    message = str(raised.value)
    assert message.startswith(
        "cannot reach the database postgresql+psycopg://paved:***@127.0.0.1:1/paved"
    )
    assert "secret" not in message
    assert "PAVED_DATABASE_URL" in message


WRITE = Action("probe.meta.update", "Write a probe value")


@BOTH_BACKENDS
def test_a_request_that_fails_after_writing_saves_nothing_but_its_audit_event(
    backend: str,
    settings: Settings,
    engine: Engine,
    plugins: Plugins,
    admin_headers: dict[str, str],
) -> None:
    router = APIRouter()

    @router.post("/api/probe/meta", dependencies=[requires(WRITE)])
    def write_then_fail(session: SessionDep, fail: bool = False) -> dict[str, bool]:
        session.add(PortalMeta(key="probe", value="written"))
        session.flush()
        if fail:
            raise RuntimeError("the second half of the work failed")
        return {"saved": True}

    @router.post("/api/probe/duplicate", dependencies=[requires(WRITE)])
    def fail_at_commit(session: SessionDep) -> dict[str, bool]:
        session.add(PortalMeta(key="probe", value="again"))  # the key exists: refused at commit
        return {"saved": True}

    def probe_value() -> str | None:
        with Session(engine) as session:
            row = session.get(PortalMeta, "probe")
            return row.value if row else None

    with throwaway_plugin(
        plugins, "probe", paved_actions=lambda: [WRITE], paved_routes=lambda: [router]
    ):
        app = create_app(settings, plugins=plugins, engine=engine)
        with TestClient(app, raise_server_exceptions=False, headers=admin_headers) as client:
            assert client.post("/api/probe/meta?fail=true").status_code == 500
            assert probe_value() is None
            assert client.post("/api/probe/meta").json() == {"saved": True}
            assert probe_value() == "written"
            assert client.post("/api/probe/duplicate").status_code == 500
            assert probe_value() == "written"

    with Session(engine) as session:
        events = session.exec(select(AuditEvent).order_by(col(AuditEvent.id))).all()
        assert [(event.action, event.outcome, event.detail.get("status")) for event in events] == [
            ("probe.meta.update", "failed", 500),
            ("probe.meta.update", "succeeded", None),
            ("probe.meta.update", "failed", 500),
        ]
        assert events[0].detail["error"] == "RuntimeError"
        assert events[2].detail["error"] == "IntegrityError"
        assert verify_chain(session).is_intact

"""Migration 0006 adds the scaffolder's table and the step of a task's log line, and goes
back down cleanly."""

from __future__ import annotations

from sqlalchemy import inspect
from sqlalchemy.engine import Engine

from portal import schema

from conftest import BOTH_BACKENDS


@BOTH_BACKENDS
def test_the_scaffolder_migration_goes_down_and_up_again(backend: str, engine: Engine) -> None:
    schema.downgrade(engine, "0005")
    tables = inspect(engine).get_table_names()
    assert "scaffolder_run" not in tables
    assert {c["name"] for c in inspect(engine).get_columns("task_log")} >= {"message"}
    assert "step" not in {c["name"] for c in inspect(engine).get_columns("task_log")}

    schema.upgrade(engine)

    assert "scaffolder_run" in inspect(engine).get_table_names()
    columns = {c["name"] for c in inspect(engine).get_columns("task_log")}
    assert {"step", "step_status"} <= columns
    assert schema.is_at_head(engine)

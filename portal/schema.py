"""Applying and inspecting Alembic migrations on a Paved database.

Alembic (with Mako) takes about 0.3 s to import, a sixth of the start-up budget, so the
questions asked on every start and every ``/readyz`` (which revision is the database at,
which is the newest) are answered without it; Alembic is imported only to migrate.
"""

from __future__ import annotations

import ast
from functools import cache
from importlib.util import find_spec
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import inspect, text
from sqlalchemy.engine import Engine

if TYPE_CHECKING:
    from alembic.config import Config

VERSION_TABLE = "alembic_version"


@cache
def migrations_dir() -> Path:
    spec = find_spec("migrations")
    if spec is None or spec.origin is None:
        raise RuntimeError("the `migrations` package is not installed with Paved")
    return Path(spec.origin).parent


def alembic_config(engine: Engine | None = None) -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(migrations_dir()))
    if engine is not None:
        url = engine.url.render_as_string(hide_password=False)
        config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def _revision_links(source: str) -> tuple[str, tuple[str, ...]]:
    """``revision`` and ``down_revision`` of one migration file, read without running it."""
    values: dict[str, object] = {}
    for node in ast.parse(source).body:
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and node.value:
            name, value = node.target.id, node.value
        elif isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name):
            name, value = node.targets[0].id, node.value
        else:
            continue
        if name in {"revision", "down_revision"}:
            values[name] = ast.literal_eval(value)
    down = values.get("down_revision")
    if isinstance(down, str):
        return str(values["revision"]), (down,)
    if isinstance(down, list | tuple):  # a merge revision has several parents
        return str(values["revision"]), tuple(str(parent) for parent in down)
    return str(values["revision"]), ()


@cache
def head_revision() -> str | None:
    """The newest revision: the one no other migration names as its ``down_revision``."""
    links = [
        _revision_links(path.read_text())
        for path in sorted((migrations_dir() / "versions").glob("*.py"))
    ]
    parents = {parent for _, down in links for parent in down}
    heads = sorted(revision for revision, _ in links if revision not in parents)
    if len(heads) > 1:
        raise RuntimeError(
            f"the migrations have several heads ({', '.join(heads)}); "
            "expected one: merge them with `alembic merge`"
        )
    return heads[0] if heads else None


def current_revision(engine: Engine) -> str | None:
    """The revision the database is at, or None when it was never migrated."""
    with engine.connect() as connection:
        if not inspect(connection).has_table(VERSION_TABLE):
            return None
        return connection.execute(text("SELECT version_num FROM alembic_version")).scalar()


def is_empty(engine: Engine) -> bool:
    """True when the database has no tables at all (a fresh install)."""
    return not inspect(engine).get_table_names()


def is_at_head(engine: Engine) -> bool:
    return current_revision(engine) == head_revision()


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Apply migrations up to ``revision`` in one transaction."""
    from alembic import command

    config = alembic_config(engine)
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, revision)


def downgrade(engine: Engine, revision: str) -> None:
    """Undo migrations down to ``revision`` (``base`` for none) in one transaction."""
    from alembic import command

    config = alembic_config(engine)
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, revision)

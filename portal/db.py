"""Database engines and the per-request session that commits once."""

from __future__ import annotations

import itertools
import json
import logging
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import Depends, Request
from sqlalchemy import JSON, Table, event, text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session, create_engine

from portal.errors import EngineUnavailable
from portal.settings import Settings

log = logging.getLogger("paved.db")


def utcnow() -> datetime:
    return datetime.now(UTC)


def as_utc(moment: datetime) -> datetime:
    """SQLite hands back naive datetimes; Paved stores every moment in UTC."""
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def create_database_engine(settings: Settings) -> Engine:
    """Build the engine for ``settings.database_url``; creates the SQLite folder if needed."""
    url = settings.sqlalchemy_url
    if url.get_backend_name() == "sqlite":
        if url.database and url.database != ":memory:":
            from pathlib import Path

            Path(url.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=10, connect_args={"connect_timeout": 5})


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # WAL lets readers go on while a writer commits; busy_timeout makes writers wait
    # for each other instead of failing at once.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def check_reachable(engine: Engine) -> None:
    """Raise EngineUnavailable, naming the database and the driver's words, if it cannot answer."""
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except SQLAlchemyError as exc:
        shown = engine.url.render_as_string(hide_password=True)
        reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
        raise EngineUnavailable(
            f"cannot reach the database {shown}: {reason}; expected a running database "
            "that accepts this URL (setting database_url, PAVED_DATABASE_URL)"
        ) from None


# The tables bulk_insert wrote in the session's transaction, for whoever needs to know at commit.
WRITTEN_TABLES = "paved.written_tables"
BULK_CHUNK = 1000


def bulk_insert(
    session: Session, table: Table, columns: Sequence[str], rows: Iterable[Sequence[Any]]
) -> None:
    """Insert ``rows`` (values in the order of ``columns``) into ``table`` in the session's
    transaction: with COPY on PostgreSQL, ten times faster than row by row, taking in each
    row as ``rows`` makes it; with executemany in chunks elsewhere."""
    session.info.setdefault(WRITTEN_TABLES, set()).add(table.name)
    connection = session.connection()
    if connection.dialect.name != "postgresql":
        statement = table.insert()
        names = list(columns)
        remaining = iter(rows)
        while chunk := list(itertools.islice(remaining, BULK_CHUNK)):
            connection.execute(statement, [dict(zip(names, row, strict=True)) for row in chunk])
        return
    is_json = [isinstance(table.c[name].type, JSON) for name in columns]
    quote = connection.dialect.identifier_preparer.quote
    statement = f"COPY {quote(table.name)} ({', '.join(map(quote, columns))}) FROM STDIN"
    driver = connection.connection.driver_connection
    with driver.cursor() as cursor, cursor.copy(statement) as copy:  # type: ignore[union-attr]
        if not any(is_json):
            for row in rows:
                copy.write_row(row)
            return
        for row in rows:
            copy.write_row(
                [
                    json.dumps(value) if as_json and value is not None else value
                    for value, as_json in zip(row, is_json, strict=True)
                ]
            )


# What a request's transaction does at its end, registered by whoever needs it (the gate
# writes the audit event of a state-changing request this way): on commit, in the same
# transaction as the route's work; on failure, in a transaction of its own after the work
# rolled back.
ON_COMMIT = "paved.on_commit"
ON_FAILURE = "paved.on_failure"


def on_commit(session: Session, callback: Callable[[Session], None]) -> None:
    """Run ``callback(session)`` just before the request's transaction commits."""
    session.info.setdefault(ON_COMMIT, []).append(callback)


def on_failure(session: Session, callback: Callable[[Session, Exception], None]) -> None:
    """Run ``callback(session, error)`` after the request's work rolled back, then commit."""
    session.info.setdefault(ON_FAILURE, []).append(callback)


def get_session(request: Request) -> Iterator[Session]:
    """One session per request, committed once after the route returns.

    Anything that fails (the route, a commit callback, the commit itself) rolls the whole
    request back; then the failure callbacks run and commit alone.
    """
    with Session(request.app.state.engine) as session:
        try:
            yield session
            for callback in session.info.pop(ON_COMMIT, ()):
                callback(session)
            session.commit()
        except Exception as exc:
            session.rollback()
            session.info.pop(ON_COMMIT, None)
            callbacks = session.info.pop(ON_FAILURE, ())
            try:
                for callback in callbacks:
                    callback(session, exc)
                if callbacks:
                    session.commit()
            except Exception:
                # The original error is what the caller must see; this one goes to the log.
                log.exception("could not record the failure of %s %s", request.method, request.url)
                session.rollback()
            raise


# scope="function": the commit happens before the response is sent, so a failed
# commit becomes an error response instead of a silently lost write.
SessionDep = Annotated[Session, Depends(get_session, scope="function")]

"""Database engines and the per-request session that commits once."""

from __future__ import annotations

import itertools
import json
import logging
import weakref
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from datetime import UTC, datetime
from typing import Annotated, Any, TypeVar

from fastapi import Depends, Request
from fastapi.concurrency import run_in_threadpool
from sqlalchemy import JSON, Table, event, text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session, create_engine

from portal.errors import EngineUnavailable
from portal.settings import Settings

log = logging.getLogger("paved.db")
T = TypeVar("T")


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
# Set while a session reads without a transaction: every statement sees the latest commit.
READS_LATEST = "paved.reads_latest"
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
    copy_sql = f"COPY {quote(table.name)} ({', '.join(map(quote, columns))}) FROM STDIN"
    driver = connection.connection.driver_connection
    with driver.cursor() as cursor, cursor.copy(copy_sql) as copy:  # type: ignore[union-attr]
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


async def get_session(request: Request) -> AsyncIterator[Session]:
    """One session per request, committed once after the route returns.

    Anything that fails (the route, a commit callback, the commit itself) rolls the whole
    request back; then the failure callbacks run and commit alone. The session is opened
    on the event loop (that touches no database) and ended in the thread pool only when
    there is something to end: a request that never used the database, a denial for one,
    costs no trip to the thread pool (each costs about 0.1 ms).
    """
    session = Session(request.app.state.engine)
    try:
        yield session
    except Exception as exc:
        if session.in_transaction() or session.info.get(ON_FAILURE):
            await run_in_threadpool(_end_failed, session, request, exc)
        else:
            session.close()
        raise
    if session.in_transaction() or session.info.get(ON_COMMIT):
        await run_in_threadpool(_end, session, request)
    else:
        session.close()


async def read_only(session: Session, work: Callable[[], T]) -> T:
    """Run ``work``, which only reads, in the thread pool, and end the session's transaction
    there too: one trip to the pool for the whole request instead of two. For routes whose
    action only reads (nothing to commit, no audit event)."""

    def run() -> T:
        try:
            if not session.in_transaction():
                # Reads alone need no transaction (no BEGIN and ROLLBACK to send), and a
                # connection only once something is read from the database.
                session.bind = _autocommit(session.get_bind())  # type: ignore[arg-type]
                session.info[READS_LATEST] = True
            return work()
        finally:
            session.info.pop(READS_LATEST, None)
            if not session.info.get(ON_COMMIT):
                session.close()

    return await run_in_threadpool(run)


_autocommit_engines: weakref.WeakKeyDictionary[Engine, Engine] = weakref.WeakKeyDictionary()


def _autocommit(engine: Engine) -> Engine:
    """``engine`` (its pool shared) with connections that commit every statement."""
    root = base_engine(engine)
    found = _autocommit_engines.get(root)
    if found is None:
        found = _autocommit_engines[root] = root.execution_options(isolation_level="AUTOCOMMIT")
    return found


def base_engine(engine: Engine) -> Engine:
    """The engine itself, for one derived from it with execution options."""
    return getattr(engine, "_proxied", engine)


def _end(session: Session, request: Request) -> None:
    with session:
        try:
            for callback in session.info.pop(ON_COMMIT, ()):
                callback(session)
            session.commit()
        except Exception as exc:
            _fail(session, request, exc)
            raise


def _end_failed(session: Session, request: Request, exc: Exception) -> None:
    with session:
        _fail(session, request, exc)


def _fail(session: Session, request: Request, exc: Exception) -> None:
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


# scope="function": the commit happens before the response is sent, so a failed
# commit becomes an error response instead of a silently lost write.
SessionDep = Annotated[Session, Depends(get_session, scope="function")]

"""Database engines and the per-request session that commits once."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import Depends, Request
from sqlalchemy import event, text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session, create_engine

from portal.errors import EngineUnavailable
from portal.settings import Settings


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


def get_session(request: Request) -> Iterator[Session]:
    """One session per request, committed once after the route returns."""
    with Session(request.app.state.engine) as session:
        yield session
        session.commit()


# scope="function": the commit happens before the response is sent, so a failed
# commit becomes an error response instead of a silently lost write.
SessionDep = Annotated[Session, Depends(get_session, scope="function")]

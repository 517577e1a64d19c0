"""The catalog's generation, and what is remembered per generation.

Every transaction that writes entities, search rows or relations raises the generation in
``catalog_state`` as it commits, whoever wrote them (ingestion, the API, a plugin): a
session event notices the writes. Entities' JSON, pages, counts and facets are remembered
per database and generation (:func:`remembered`), so asking again costs no database work
until the catalog changes. Each replica keeps its own.

Knowing the generation costs nothing either while a :class:`Watcher` runs (the portal
starts one): on PostgreSQL it listens for the notification each change sends as it
commits, so other replicas see a change within milliseconds (and within
``HEARTBEAT_SECONDS`` if a notification were ever lost); on SQLite it asks the file,
through ``PRAGMA data_version``, whether anyone committed since it last looked, so a change
is seen at once. A change made by this replica is seen at once in both. Without a watcher
(the CLI, a script) the generation is read from the database.
"""

from __future__ import annotations

import logging
import threading
import time
import weakref
from collections import OrderedDict
from collections.abc import Callable, Hashable, Mapping, Sequence
from typing import Any, TypeVar, cast

from sqlalchemy import event, text, update
from sqlalchemy.engine import Engine
from sqlalchemy.orm import ORMExecuteState, UOWTransaction
from sqlalchemy.orm import Session as OrmSession
from sqlmodel import Session, col, select

from catalog.models import CatalogEntity, CatalogRelation, CatalogSearch, CatalogState
from portal.db import READS_LATEST, WRITTEN_TABLES, base_engine

log = logging.getLogger("paved.catalog")

CATALOG_TABLES = frozenset(
    table.__tablename__ for table in (CatalogEntity, CatalogSearch, CatalogRelation)
)
_CHANGED = "paved.catalog_changed"
_GENERATION = "paved.catalog_generation"
_RAISED_TO = "paved.catalog_raised_to"
CHANNEL = "paved_catalog_generation"
HEARTBEAT_SECONDS = 5.0
WAKE_SECONDS = 0.2  # how long stopping the watcher may take
# What is remembered per engine, by size (catalog.remembered_mb sets it for the portal's).
DEFAULT_REMEMBERED_BYTES = 64 * 1024 * 1024

T = TypeVar("T")
K = TypeVar("K", bound=Hashable)


def current(session: Session) -> int:
    """The generation this session's transaction reads at, known once per transaction."""
    known = session.info.get(_GENERATION)
    if known is None:
        known = _watched(session)
        if known is None:
            statement = select(CatalogState.generation).where(CatalogState.id == 1)
            known = int(session.exec(statement).one())
        session.info[_GENERATION] = known
    return int(known)


def _watched(session: Session) -> int | None:
    """The generation as the engine's watcher knows it, or None to ask the database.

    The watcher's generation is never newer than what this session reads when the session
    reads the latest data: it has not begun reading yet, or reads without a transaction.
    Inside an older snapshot, only the database can say.
    """
    watcher = _watchers.get(base_engine(session.get_bind()))  # type: ignore[arg-type]
    reads_latest = not session.in_transaction() or session.info.get(READS_LATEST)
    return watcher.generation() if watcher is not None and reads_latest else None


class _Memory:
    """A least-recently-used store of results, bounded by their size."""

    def __init__(self, max_bytes: int) -> None:
        self.lock = threading.Lock()
        self.entries: OrderedDict[tuple[int, Hashable], tuple[Any, int]] = OrderedDict()
        self.size = 0
        self.max_bytes = max_bytes

    def get(self, entry: tuple[int, Hashable]) -> tuple[bool, Any]:
        with self.lock:
            found = self.entries.get(entry)
            if found is None:
                return False, None
            self.entries.move_to_end(entry)
            return True, found[0]

    def put(self, entry: tuple[int, Hashable], value: Any) -> None:
        size = _size(value)
        with self.lock:
            previous = self.entries.pop(entry, None)
            self.size += size - (previous[1] if previous else 0)
            self.entries[entry] = (value, size)
            while self.size > self.max_bytes and self.entries:
                _, (_, dropped) = self.entries.popitem(last=False)
                self.size -= dropped


def _size(value: Any) -> int:
    """Roughly the bytes ``value`` holds: text, a page of refs, a list of counts."""
    if isinstance(value, str):
        return 50 + len(value)
    rows = getattr(value, "rows", None)
    if isinstance(rows, list):
        return 200 + sum(len(row) if isinstance(row, str) else 100 for row in rows)
    if isinstance(value, list):
        return 50 + 100 * len(value)
    return 100


_memories: weakref.WeakKeyDictionary[Engine, _Memory] = weakref.WeakKeyDictionary()
_memories_lock = threading.Lock()


def _memory(session: Session) -> _Memory | None:
    """The engine's memory; None while this transaction has catalog changes of its own,
    which other requests must not see (they may yet be rolled back)."""
    if session.info.get(_CHANGED) or _touches_catalog(session.info.get(WRITTEN_TABLES, set())):
        return None
    engine = base_engine(session.get_bind())  # type: ignore[arg-type]
    with _memories_lock:
        memory = _memories.get(engine)
        if memory is None:
            watcher = _watchers.get(engine)
            limit = watcher.remembered_bytes if watcher is not None else DEFAULT_REMEMBERED_BYTES
            memory = _memories[engine] = _Memory(limit)
        return memory


def remembered(session: Session, key: Hashable, compute: Callable[[], T]) -> T:
    """``compute()``, or what it gave for ``key`` in this generation of this database.

    The generation is read first: a result computed from newer data than its generation
    says is only ever kept under an older generation, which no new request asks for.
    """
    return remembered_many(session, [key], lambda missing: {key: compute()})[key]


def remembered_many(
    session: Session, keys: Sequence[K], compute: Callable[[list[K]], Mapping[K, T]]
) -> dict[K, T]:
    """The values for ``keys``: the ones remembered in this generation, and the others from
    one call of ``compute(missing_keys)``, which must give a value for each."""
    generation = current(session)
    memory = _memory(session)
    found: dict[K, T] = {}
    missing: list[K] = []
    for key in keys:
        is_known, value = memory.get((generation, key)) if memory else (False, None)
        if is_known:
            found[key] = cast(T, value)
        else:
            missing.append(key)
    if missing:
        computed = compute(missing)
        for key in missing:
            found[key] = computed[key]
            if memory is not None:
                memory.put((generation, key), computed[key])
    return found


def peek(session: Session, keys: Sequence[K]) -> dict[K, Any] | None:
    """The values remembered for ``keys``, or None unless every one is and the generation
    is known without asking the database: an answer with no database work at all, which
    can be given on the event loop."""
    generation = _watched(session)
    if generation is None:
        return None
    memory = _memory(session)
    if memory is None:
        return None
    found: dict[K, Any] = {}
    for key in keys:
        is_known, value = memory.get((generation, key))
        if not is_known:
            return None
        found[key] = value
    return found


@event.listens_for(OrmSession, "after_transaction_end")
def _forget_generation(session: OrmSession, transaction: Any) -> None:
    if transaction.parent is None:  # the outermost transaction ended
        session.info.pop(_GENERATION, None)


# -- Noticing changes -----------------------------------------------------------------------


def mark_changed(session: Session) -> None:
    """Raise the generation when this transaction commits, as if it changed the catalog:
    everything remembered is computed afresh (after a change made behind the portal's back,
    such as a restore from a backup)."""
    session.info[_CHANGED] = True


def _touches_catalog(tables: set[str]) -> bool:
    return not tables.isdisjoint(CATALOG_TABLES)


@event.listens_for(OrmSession, "do_orm_execute")
def _on_statement(state: ORMExecuteState) -> None:
    if not (state.is_insert or state.is_update or state.is_delete):
        return
    table = getattr(state.statement, "table", None)
    if getattr(table, "name", None) in CATALOG_TABLES:
        state.session.info[_CHANGED] = True


@event.listens_for(OrmSession, "after_flush")
def _on_flush(session: OrmSession, _flush: UOWTransaction) -> None:
    changed = (*session.new, *session.dirty, *session.deleted)
    if any(isinstance(row, (CatalogEntity, CatalogSearch, CatalogRelation)) for row in changed):
        session.info[_CHANGED] = True


@event.listens_for(OrmSession, "before_commit")
def _raise_generation(session: OrmSession) -> None:
    session.flush()  # pending ORM changes are noticed before deciding
    written = session.info.pop(WRITTEN_TABLES, set())
    if session.info.pop(_CHANGED, False) or _touches_catalog(written):
        raised = session.execute(
            update(CatalogState)
            .where(col(CatalogState.id) == 1)
            .values(generation=col(CatalogState.generation) + 1)
            .returning(col(CatalogState.generation))
        ).scalar_one()
        if session.get_bind().dialect.name == "postgresql":
            # Sent when (and only if) the transaction commits.
            session.execute(
                text("SELECT pg_notify(:channel, :generation)"),
                {"channel": CHANNEL, "generation": str(raised)},
            )
        session.info[_RAISED_TO] = raised


@event.listens_for(OrmSession, "after_commit")
def _seen_here(session: OrmSession) -> None:
    raised = session.info.pop(_RAISED_TO, None)
    bind = base_engine(session.get_bind())  # type: ignore[arg-type]
    watcher = _watchers.get(bind) if raised is not None else None
    if watcher is not None:
        watcher.saw(raised)


@event.listens_for(OrmSession, "after_rollback")
def _forget(session: OrmSession) -> None:
    session.info.pop(_RAISED_TO, None)
    session.info.pop(_CHANGED, None)
    session.info.pop(WRITTEN_TABLES, None)


# -- Watching the generation ----------------------------------------------------------------


_watchers: weakref.WeakKeyDictionary[Engine, Watcher] = weakref.WeakKeyDictionary()


def watch(engine: Engine, remembered_bytes: int = DEFAULT_REMEMBERED_BYTES) -> Watcher:
    """Start knowing ``engine``'s generation without a query per request, and remember up
    to ``remembered_bytes`` of results (portal start-up)."""
    watcher = _watchers.get(engine)
    if watcher is None:
        watcher = _watchers[engine] = Watcher(engine, remembered_bytes)
        with _memories_lock:
            _memories.pop(engine, None)
        watcher.start()
    return watcher


def unwatch(engine: Engine) -> None:
    watcher = _watchers.pop(engine, None)
    if watcher is not None:
        watcher.stop()


class Watcher:
    """An engine's catalog generation, kept known without a query per request."""

    def __init__(self, engine: Engine, remembered_bytes: int = DEFAULT_REMEMBERED_BYTES) -> None:
        self.engine = engine
        self.remembered_bytes = remembered_bytes
        self._lock = threading.Lock()
        self._known: int | None = None  # None: not known, read it from the database
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._sqlite: Any = None  # a connection of its own, which never writes
        self._data_version: int | None = None

    def start(self) -> None:
        if self.engine.dialect.name == "postgresql":
            self._thread = threading.Thread(
                target=self._listen, name="catalog-generation", daemon=True
            )
            self._thread.start()
        elif self.engine.dialect.name == "sqlite" and self.engine.url.database not in (
            None,
            "",
            ":memory:",
        ):
            import sqlite3

            self._sqlite = sqlite3.connect(
                self.engine.url.database, check_same_thread=False, isolation_level=None
            )

    def stop(self) -> None:
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout=WAKE_SECONDS + 5)
        if self._sqlite is not None:
            with self._lock:
                self._sqlite.close()
                self._sqlite = None

    def generation(self) -> int | None:
        """The current generation, or None when it must be read from the database."""
        if self._sqlite is not None:
            return self._sqlite_generation()
        return self._known

    def saw(self, generation: int) -> None:
        """This replica committed ``generation``: known at once, before any notification."""
        with self._lock:
            if self._known is not None:
                self._known = max(self._known, generation)

    def _sqlite_generation(self) -> int | None:
        with self._lock:
            if self._sqlite is None:
                return None
            try:
                (version,) = self._sqlite.execute("PRAGMA data_version").fetchone()
                if version != self._data_version or self._known is None:
                    (known,) = self._sqlite.execute(_READ_SQL).fetchone()
                    self._known, self._data_version = int(known), version
            except Exception:  # any failure: read from the database as if unwatched
                log.warning("could not watch the catalog generation", exc_info=True)
                self._known = None
            return self._known

    def _listen(self) -> None:
        import psycopg

        url = self.engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
        while not self._stopping.is_set():
            try:
                with psycopg.connect(url, autocommit=True, connect_timeout=5) as connection:
                    connection.execute(f"LISTEN {CHANNEL}")
                    read_at = 0.0
                    while not self._stopping.is_set():
                        if time.monotonic() - read_at >= HEARTBEAT_SECONDS:
                            # Read after listening, so no change falls between the two;
                            # again at every heartbeat, so a lost notification costs seconds.
                            (known,) = connection.execute(_READ_SQL).fetchone()  # type: ignore[misc]
                            self._set(int(known))
                            read_at = time.monotonic()
                        for notification in connection.notifies(timeout=WAKE_SECONDS):
                            self._set(int(notification.payload))
            except Exception:
                log.warning("catalog generation not watched; retrying", exc_info=True)
            with self._lock:
                self._known = None
            self._stopping.wait(1.0)

    def _set(self, generation: int) -> None:
        with self._lock:
            self._known = generation if self._known is None else max(self._known, generation)


_READ_SQL = "SELECT generation FROM catalog_state WHERE id = 1"

"""The catalog's generation, and what is remembered per generation.

Every transaction that writes entities, search rows or relations raises the generation in
``catalog_state`` as it commits, whoever wrote them (ingestion, the API, a plugin): a
session event notices the writes. Counts and facets cost time in proportion to the
entities they cover; :func:`remembered` keeps them per database and generation, so asking
again costs one primary-key read until the catalog changes. Each replica keeps its own, and
reads the generation from the database, so a change made anywhere is seen everywhere at once.
"""

from __future__ import annotations

import threading
import weakref
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any, TypeVar

from sqlalchemy import event, update
from sqlalchemy.engine import Engine
from sqlalchemy.orm import ORMExecuteState, UOWTransaction
from sqlalchemy.orm import Session as OrmSession
from sqlmodel import Session, col, select

from catalog.models import CatalogEntity, CatalogRelation, CatalogSearch, CatalogState
from portal.db import WRITTEN_TABLES

CATALOG_TABLES = frozenset(
    table.__tablename__  # type: ignore[misc]
    for table in (CatalogEntity, CatalogSearch, CatalogRelation)
)
_CHANGED = "paved.catalog_changed"
# Results kept per engine: enough for every page's filters, small enough not to matter.
MAX_REMEMBERED = 2048

T = TypeVar("T")


def current(session: Session) -> int:
    """The generation this session's transaction sees."""
    return int(session.exec(select(CatalogState.generation).where(CatalogState.id == 1)).one())


class _Memory:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.entries: OrderedDict[tuple[int, Hashable], Any] = OrderedDict()


_memories: weakref.WeakKeyDictionary[Engine, _Memory] = weakref.WeakKeyDictionary()
_memories_lock = threading.Lock()


def remembered(session: Session, key: Hashable, compute: Callable[[], T]) -> T:
    """``compute()``, or what it gave for ``key`` in this generation of this database.

    The generation is read first: a result computed from newer data than its generation
    says is only ever kept under an older generation, which no new request asks for.
    """
    generation = current(session)
    engine = session.get_bind()
    assert isinstance(engine, Engine)
    with _memories_lock:
        memory = _memories.setdefault(engine, _Memory())
    entry = (generation, key)
    with memory.lock:
        if entry in memory.entries:
            memory.entries.move_to_end(entry)
            return memory.entries[entry]  # type: ignore[no-any-return]
    value = compute()
    with memory.lock:
        memory.entries[entry] = value
        while len(memory.entries) > MAX_REMEMBERED:
            memory.entries.popitem(last=False)
    return value


# -- Noticing changes -----------------------------------------------------------------------


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
        session.execute(
            update(CatalogState)
            .where(col(CatalogState.id) == 1)
            .values(generation=col(CatalogState.generation) + 1)
        )


@event.listens_for(OrmSession, "after_rollback")
def _forget(session: OrmSession) -> None:
    session.info.pop(_CHANGED, None)
    session.info.pop(WRITTEN_TABLES, None)

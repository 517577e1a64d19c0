"""The queues the service reads and writes: the ``Queue`` protocol, and ``LocalQueue``, a
durable queue in one SQLite file that processes on the same host share.

A broker adapter (Kafka, Redis Streams...) implements ``Queue`` and nothing else changes:
the consumer only publishes, receives and acknowledges.
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import time
from collections.abc import Iterator, Sequence
from contextlib import closing, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol


@dataclass(frozen=True)
class Delivery:
    """An event as a receiver gets it, to be acknowledged by ``id`` once dealt with."""

    id: str  # the queue's handle for acknowledging it: a row id, an offset, a stream entry id
    body: str
    attempts: int  # 1 on the first delivery, more on each redelivery


class Queue(Protocol):
    """A queue delivering each event at least once: a received event is hidden from other
    receivers until it is acknowledged, or redelivered if it is not, in time."""

    def publish(self, bodies: Sequence[str]) -> None:
        """Append events, all of them or none, durably before returning."""

    def receive(self, limit: int, *, wait_seconds: float = 0.0) -> list[Delivery]:
        """Up to ``limit`` events, oldest first, waiting up to ``wait_seconds`` for one."""

    def ack(self, ids: Sequence[str]) -> None:
        """Mark received events as done: they are never delivered again."""


SCHEMA = """
CREATE TABLE IF NOT EXISTS messages (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    queue TEXT NOT NULL,
    body TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    visible_at REAL NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS messages_ready ON messages (queue, visible_at, id);
"""


class LocalQueue:
    """One named queue in a SQLite file; several queues, and several processes, can share
    the file. A received event stays invisible for ``visibility_timeout`` seconds: if it is
    not acknowledged by then (its consumer crashed or hung), it is delivered again.

    Commits survive a crash of any process; on a power cut the last ones may be lost (WAL
    with synchronous=NORMAL, which spares a disk flush per commit).
    """

    def __init__(
        self,
        path: Path | str,
        name: str,
        *,
        visibility_timeout: float = 30.0,
        poll_seconds: float = 0.05,
    ) -> None:
        self.path = Path(path)
        self.name = name
        self.visibility_timeout = visibility_timeout
        self.poll_seconds = poll_seconds
        with closing(self._connect()) as db:
            db.execute("PRAGMA journal_mode = WAL")  # readers never wait for a writer
            db.executescript(SCHEMA)

    def publish(self, bodies: Sequence[str]) -> None:
        with self._transaction() as db:
            db.executemany(
                "INSERT INTO messages (queue, body) VALUES (?, ?)",
                [(self.name, body) for body in bodies],
            )

    def receive(self, limit: int, *, wait_seconds: float = 0.0) -> list[Delivery]:
        deadline = time.monotonic() + wait_seconds
        while True:
            deliveries = self._claim(limit)
            if deliveries or time.monotonic() >= deadline:
                return deliveries
            time.sleep(self.poll_seconds)

    def ack(self, ids: Sequence[str]) -> None:
        with self._transaction() as db:
            db.executemany(
                "DELETE FROM messages WHERE queue = ? AND id = ?",
                [(self.name, int(id_)) for id_ in ids],
            )

    def peek(self, limit: int = 100) -> list[str]:
        """The oldest events not yet acknowledged, received or not, left where they are."""
        with closing(self._connect()) as db:
            rows = db.execute(
                "SELECT body FROM messages WHERE queue = ? ORDER BY id LIMIT ?",
                (self.name, limit),
            ).fetchall()
        return [body for (body,) in rows]

    def __len__(self) -> int:
        """How many events are not yet acknowledged, received or not."""
        with closing(self._connect()) as db:
            (count,) = db.execute(
                "SELECT count(*) FROM messages WHERE queue = ?", (self.name,)
            ).fetchone()
        return int(count)

    def _claim(self, limit: int) -> list[Delivery]:
        # Wall-clock time, not monotonic: other processes compare it with theirs.
        now = time.time()
        with self._transaction() as db:
            rows = db.execute(
                "SELECT id, body, attempts FROM messages"
                " WHERE queue = ? AND visible_at <= ? ORDER BY id LIMIT ?",
                (self.name, now, limit),
            ).fetchall()
            db.executemany(
                "UPDATE messages SET attempts = attempts + 1, visible_at = ? WHERE id = ?",
                [(now + self.visibility_timeout, row_id) for row_id, _, _ in rows],
            )
        return [Delivery(str(row_id), body, attempts + 1) for row_id, body, attempts in rows]

    def _connect(self) -> sqlite3.Connection:
        # No implicit transactions: each method opens its own, see _transaction.
        db = sqlite3.connect(self.path, timeout=10.0, isolation_level=None)
        db.execute("PRAGMA synchronous = NORMAL")
        return db

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """A write transaction, taken at its start (BEGIN IMMEDIATE) so that two receivers
        never claim the same event."""
        with closing(self._connect()) as db:
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")


def main(argv: list[str] | None = None) -> None:
    """Push events to a local queue from a file of JSON lines, or show what a queue holds."""
    parser = argparse.ArgumentParser(description=main.__doc__)
    where = argparse.ArgumentParser(add_help=False)
    where.add_argument(
        "--db",
        type=Path,
        default=Path(os.environ.get("QUEUE_DB", "queue.db")),
        help="the queue file (default: $QUEUE_DB, else queue.db)",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    push = commands.add_parser("push", parents=[where], help="publish each line as one event")
    push.add_argument("queue")
    push.add_argument("file", type=Path)
    show = commands.add_parser("show", parents=[where], help="print the oldest events, in place")
    show.add_argument("queue")
    show.add_argument("--limit", type=int, default=20)
    options = parser.parse_args(argv)
    queue = LocalQueue(options.db, options.queue)
    if options.command == "push":
        lines = [line for line in options.file.read_text().splitlines() if line.strip()]
        queue.publish(lines)
        print(f"pushed {len(lines)} events to {options.queue}")
    else:
        for body in queue.peek(options.limit):
            print(body)


if __name__ == "__main__":
    main()

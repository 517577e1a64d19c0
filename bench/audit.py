"""Audit append under concurrent writers: events per second, and the chain stays whole.

Four writer threads, each with its own engine (its own connections), append events as
fast as they can, each event in its own transaction as a request would. Afterwards the
chain is verified: no event lost, none forked. Runs on SQLite, and on PostgreSQL when
PAVED_BENCH_DATABASE_URL (or PAVED_TEST_DATABASE_URL) names a server.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

# Run as a script, this folder comes first on sys.path, where bench/catalog.py would hide
# the catalog package the portal loads.
if Path(sys.path[0] or ".").resolve() == Path(__file__).resolve().parent:
    sys.path.pop(0)

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlmodel import Session

from portal import audit, schema
from portal.db import create_database_engine
from portal.settings import load_settings


def run(database_url: str, *, writers: int, per_writer: int) -> tuple[float, audit.Verification]:
    settings = load_settings(database_url=database_url)
    engine = create_database_engine(settings)
    schema.upgrade(engine)
    barrier = threading.Barrier(writers + 1)

    def write(number: int) -> None:
        own = create_database_engine(settings)
        barrier.wait()
        for event in range(per_writer):
            with Session(own) as session:
                audit.append_event(
                    session,
                    actor=f"user:default/writer{number}",
                    action="bench.event.create",
                    resource=f"bench:default/{event}",
                    allowed=True,
                    outcome="succeeded",
                    reasons=["benchmark"],
                    request_id=uuid.uuid4().hex,
                )
                session.commit()
        own.dispose()

    threads = [threading.Thread(target=write, args=(n,)) for n in range(writers)]
    for thread in threads:
        thread.start()
    barrier.wait()
    started = time.perf_counter()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    with Session(engine) as session:
        verification = audit.verify_chain(session)
    engine.dispose()
    return writers * per_writer / elapsed, verification


def postgres_database(server: str) -> tuple[str, str]:
    name = f"paved_bench_{uuid.uuid4().hex[:8]}"
    admin = create_engine(
        make_url(server).set(drivername="postgresql+psycopg"), isolation_level="AUTOCOMMIT"
    )
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return make_url(server).set(database=name).render_as_string(hide_password=False), name


def drop_postgres_database(server: str, name: str) -> None:
    admin = create_engine(
        make_url(server).set(drivername="postgresql+psycopg"), isolation_level="AUTOCOMMIT"
    )
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--writers", type=int, default=4)
    parser.add_argument("--events", type=int, default=500, help="events per writer")
    args = parser.parse_args()
    total = args.writers * args.events
    print(
        f"audit append: {args.writers} concurrent writers x {args.events} events, "
        "one transaction each"
    )
    failed = False
    with tempfile.TemporaryDirectory() as scratch:
        backends = [("sqlite", f"sqlite:///{scratch}/bench.db")]
        server = os.environ.get("PAVED_BENCH_DATABASE_URL") or os.environ.get(
            "PAVED_TEST_DATABASE_URL"
        )
        created = postgres_database(server) if server else None
        if created:
            backends.append(("postgresql", created[0]))
        try:
            for label, url in backends:
                rate, verification = run(url, writers=args.writers, per_writer=args.events)
                whole = verification.is_intact and verification.checked == total
                failed |= not whole
                print(
                    f"  {label:11} {rate:8,.0f} events/s   chain "
                    f"{'intact' if whole else 'BROKEN'}: {verification.checked:,} of "
                    f"{total:,} events{'' if whole else ' - ' + str(verification.problem)}"
                )
        finally:
            if created and server:
                drop_postgres_database(server, created[1])
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

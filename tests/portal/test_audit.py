"""The audit log: a hash chain the database refuses to change, and that proves tampering."""

from __future__ import annotations

import csv
import hashlib
import io
import itertools
import json
import threading

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError
from sqlmodel import Session, col, select

from portal import audit
from portal.db import create_database_engine
from portal.models import GENESIS_HASH, AuditEvent
from portal.settings import Settings

from conftest import BOTH_BACKENDS
from processes import paved, settings_env


def record(engine: Engine, count: int, **fields: object) -> None:
    with Session(engine) as session:
        for number in range(count):
            audit.append_event(
                session,
                actor=str(fields.get("actor", f"user:default/u{number % 3}")),
                action=str(fields.get("action", "catalog.entity.update")),
                resource=f"component:default/c{number}",
                allowed=True,
                reasons=["owner of the component"],
                request_id=f"req-{number}",
                outcome=str(fields.get("outcome", "succeeded")),
            )
        session.commit()


def verify(engine: Engine) -> audit.Verification:
    with Session(engine) as session:
        return audit.verify_chain(session)


def tamper(engine: Engine, *statements: str) -> None:
    """Change rows behind the database's back: switch its guard off, as an intruder would."""
    with engine.begin() as connection:
        if engine.dialect.name == "postgresql":
            connection.execute(text("ALTER TABLE audit_event DISABLE TRIGGER USER"))
        else:
            connection.execute(text("DROP TRIGGER audit_event_no_update"))
            connection.execute(text("DROP TRIGGER audit_event_no_delete"))
        for statement in statements:
            connection.execute(text(statement))


@BOTH_BACKENDS
def test_events_form_a_hash_chain_over_canonical_json(backend: str, engine: Engine) -> None:
    record(engine, 3)
    with Session(engine) as session:
        events = session.exec(select(AuditEvent).order_by(col(AuditEvent.id))).all()
        assert [event.id for event in events] == [1, 2, 3]
        assert events[0].prev_hash == GENESIS_HASH
        for before, after in itertools.pairwise(events):
            assert after.prev_hash == before.hash
        canonical = json.loads(audit.canonical_json(events[1]))
        assert canonical["actor"] == "user:default/u1"
        assert canonical["prev_hash"] == events[0].hash
        assert events[1].hash == hashlib.sha256(audit.canonical_json(events[1])).hexdigest()
    assert verify(engine) == audit.Verification(checked=3)


@BOTH_BACKENDS
def test_the_database_refuses_to_update_or_delete_events(backend: str, engine: Engine) -> None:
    record(engine, 2)
    refusals = [
        update(AuditEvent).where(AuditEvent.id == 1).values(actor="user:default/mallory"),
        text("DELETE FROM audit_event WHERE id = 2"),
    ]
    if backend == "postgres":
        refusals.append(text("TRUNCATE audit_event"))
    for statement in refusals:
        with engine.connect() as connection, pytest.raises(DBAPIError, match="append-only"):
            connection.execute(statement)
    assert verify(engine).is_intact


@BOTH_BACKENDS
@pytest.mark.parametrize(
    ("change", "broken_at", "problem"),
    [
        (
            "UPDATE audit_event SET actor = 'user:default/mallory' WHERE id = 3",
            3,
            "event 3 was changed after it was written",
        ),
        ("DELETE FROM audit_event WHERE id = 2", 2, "event 2 is missing (the next one is 3)"),
        (
            "DELETE FROM audit_event WHERE id = 5",
            5,
            "the chain ends at event 4 but 5 were written: the newest events were removed",
        ),
    ],
)
def test_verify_names_the_first_event_changed_behind_the_databases_back(
    backend: str, engine: Engine, change: str, broken_at: int, problem: str
) -> None:
    record(engine, 5)
    tamper(engine, change)
    result = verify(engine)
    assert (result.broken_at, result.problem) == (broken_at, problem)


@BOTH_BACKENDS
def test_verify_finds_events_re_ordered_behind_the_databases_back(
    backend: str, engine: Engine
) -> None:
    record(engine, 4)
    # Swap events 2 and 3 whole (hashes included), so each row is self-consistent.
    columns = (
        "at, actor, action, resource, allowed, reasons, request_id, outcome, detail, "
        "prev_hash, hash"
    )
    tamper(
        engine,
        f"CREATE TEMPORARY TABLE swap AS SELECT id, {columns} FROM audit_event WHERE id IN (2, 3)",
        # Frees the unique hashes for the swap.
        "UPDATE audit_event SET hash = substr(hash, 2) || 'x' WHERE id IN (2, 3)",
        *[
            f"UPDATE audit_event SET ({columns}) = "
            f"(SELECT {columns} FROM swap WHERE swap.id = {other}) WHERE id = {target}"
            for target, other in ((2, 3), (3, 2))
        ],
    )
    result = verify(engine)
    assert result.broken_at == 2
    assert result.problem == "event 2 does not follow event 1: events were removed or re-ordered"


@BOTH_BACKENDS
def test_concurrent_appenders_never_fork_or_lose_the_chain(
    backend: str, engine: Engine, settings: Settings
) -> None:
    barrier = threading.Barrier(4)

    def writer(number: int) -> None:
        own = create_database_engine(settings)
        barrier.wait()
        for _ in range(25):
            record(own, 1, actor=f"user:default/writer{number}")
        own.dispose()

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert verify(engine) == audit.Verification(checked=100)


def test_an_append_rolled_back_with_its_work_leaves_no_gap(engine: Engine) -> None:
    record(engine, 1)
    with Session(engine) as session:
        audit.append_event(
            session, actor="user:default/a", action="x.y.create", allowed=True, outcome="succeeded"
        )
        session.rollback()
    record(engine, 1)
    assert verify(engine) == audit.Verification(checked=2)


def test_audit_verify_exits_0_when_intact_and_1_naming_the_broken_event(
    engine: Engine, settings: Settings
) -> None:
    record(engine, 3)
    intact = paved("audit", "verify", env=settings_env(settings))
    assert intact.returncode == 0, intact.stderr
    assert "audit log intact: 3 events" in intact.stderr
    tamper(engine, "UPDATE audit_event SET outcome = 'denied' WHERE id = 2")
    broken = paved("audit", "verify", env=settings_env(settings))
    assert broken.returncode == 1
    assert "audit log broken at event 2: event 2 was changed after it was written" in broken.stderr
    assert "1 events before it are intact" in broken.stderr


def test_the_api_filters_and_pages_newest_first(client: TestClient, engine: Engine) -> None:
    record(engine, 5, actor="user:default/alice")
    record(engine, 2, actor="user:default/bob", outcome="denied")
    first = client.get("/api/audit/events", params={"actor": "user:default/alice", "limit": 2})
    assert first.status_code == 200
    body = first.json()
    assert [event["id"] for event in body["events"]] == [5, 4]
    second = client.get(body["next"]).json()
    assert [event["id"] for event in second["events"]] == [3, 2]
    last = client.get(second["next"]).json()
    assert ([event["id"] for event in last["events"]], last["next"]) == ([1], None)
    denied = client.get("/api/audit/events", params={"outcome": "denied"}).json()["events"]
    assert {event["actor"] for event in denied} == {"user:default/bob"}


def test_the_api_filters_by_time_and_refuses_an_unknown_outcome(
    client: TestClient, engine: Engine
) -> None:
    record(engine, 2)
    assert (
        client.get("/api/audit/events", params={"since": "2999-01-01T00:00:00"}).json()["events"]
        == []
    )
    assert (
        len(
            client.get("/api/audit/events", params={"until": "2999-01-01T00:00:00"}).json()[
                "events"
            ]
        )
        == 2
    )
    problem = client.get("/api/audit/events", params={"outcome": "maybe"}).json()
    assert problem["errors"][0]["field"] == "query.outcome"


def test_exports_carry_every_matching_event_with_its_hashes(
    client: TestClient, engine: Engine
) -> None:
    record(engine, 3, actor="user:default/alice")
    record(engine, 1, actor="user:default/bob")
    exported = client.get("/api/audit/export", params={"actor": "user:default/alice"})
    assert exported.headers["content-disposition"] == 'attachment; filename="paved-audit.csv"'
    rows = list(csv.DictReader(io.StringIO(exported.text)))
    assert [row["id"] for row in rows] == ["3", "2", "1"]
    assert json.loads(rows[0]["reasons"]) == ["owner of the component"]
    assert rows[1]["prev_hash"] == rows[2]["hash"]
    as_json = client.get("/api/audit/export", params={"format": "json"}).json()
    assert [event["id"] for event in as_json] == [4, 3, 2, 1]


def test_the_audit_page_filters_with_labelled_fields(client: TestClient, engine: Engine) -> None:
    record(engine, 2, actor="user:default/alice")
    record(engine, 1, actor="user:default/bob")
    page = client.get(
        "/audit", params={"actor": "user:default/bob"}, headers={"Accept": "text/html"}
    )
    assert page.status_code == 200
    assert page.text.count("<tr>") == 2  # the header row and bob's one event
    for field in ("actor", "action", "resource", "outcome", "since", "until"):
        assert f'<label for="f-{field}">' in page.text
    assert 'href="/api/audit/export?actor=user%3Adefault%2Fbob&amp;format=csv"' in page.text

"""Counts and facets are remembered per catalog generation, and every change to the catalog,
by any code on any replica, raises the generation so nothing stale is ever served."""

from __future__ import annotations

import time
from collections.abc import Callable

from fastapi.testclient import TestClient
from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from catalog import generation, service
from catalog.models import CatalogEntity, CatalogLocation, CatalogRelation, CatalogSearch
from portal.db import bulk_insert, create_database_engine
from portal.models import Task
from portal.settings import Settings

from conftest import BOTH_BACKENDS

BASE = "/api/catalog"


def eventually(check: Callable[[], bool], seconds: float = 5.0) -> float:
    """Seconds until ``check()`` holds (another replica's change travels as a notification
    on PostgreSQL); fails if it never does."""
    started = time.monotonic()
    while not check():
        assert time.monotonic() - started < seconds, "the change was never seen"
        time.sleep(0.01)
    return time.monotonic() - started


def models_total(client: TestClient) -> int:
    found = client.get(f"{BASE}/entities/by-query", params={"filter": "kind=model"}).json()
    return int(found["totalItems"])


def kind_facet(client: TestClient) -> dict[str, int]:
    facets = client.get(f"{BASE}/entity-facets", params={"facet": "kind"}).json()["facets"]
    return {facet["value"]: facet["count"] for facet in facets["kind"]}


def first_model_uid(engine: Engine) -> str:
    with Session(engine) as session:
        return session.exec(
            select(CatalogEntity.uid).where(col(CatalogEntity.kind_key) == "model")
        ).first()  # type: ignore[return-value]


@BOTH_BACKENDS
def test_counts_and_facets_follow_a_change_made_through_the_api(
    backend: str, catalog: TestClient, engine: Engine
) -> None:
    before, facet_before = models_total(catalog), kind_facet(catalog)
    assert before > 1
    assert facet_before["Model"] == before
    assert models_total(catalog) == before  # asked again: the same answer

    deleted = catalog.delete(f"{BASE}/entities/by-uid/{first_model_uid(engine)}")

    assert deleted.status_code == 204
    assert models_total(catalog) == before - 1
    assert kind_facet(catalog)["Model"] == before - 1


@BOTH_BACKENDS
def test_a_change_made_by_another_replica_is_seen_within_a_second(
    backend: str, catalog: TestClient, engine: Engine, settings: Settings
) -> None:
    before = models_total(catalog)
    other_replica = create_database_engine(settings)
    try:
        with Session(other_replica) as session:
            session.delete(session.get(CatalogEntity, first_model_uid(engine)))
            session.commit()
    finally:
        other_replica.dispose()

    assert eventually(lambda: models_total(catalog) == before - 1) < 1


@BOTH_BACKENDS
def test_the_generation_rises_once_per_transaction_that_writes_the_catalog(
    backend: str, engine: Engine, settings: Settings
) -> None:
    with Session(engine) as session:
        start = generation.current(session)
        service.register_demo(session, settings.catalog)  # many bulk writes, one commit
        session.commit()
        after_ingestion = generation.current(session)

        session.add(
            Task(kind="demo.task", title="not the catalog", created_by="test")
        )  # not the catalog
        session.commit()
        session.exec(select(CatalogEntity)).first()  # reads only
        session.commit()
        unchanged = generation.current(session)

        uid = first_model_uid(engine)
        bulk_insert(
            session,
            CatalogSearch.__table__,  # type: ignore[attr-defined]
            ("entity_uid", "ordinal", "key", "value", "original_value"),
            [(uid, 1000, "x", "y", "Y")],
        )
        session.rollback()  # rolled back: nothing changed
        after_rollback = generation.current(session)
        bulk_insert(
            session,
            CatalogSearch.__table__,  # type: ignore[attr-defined]
            ("entity_uid", "ordinal", "key", "value", "original_value"),
            [(uid, 1000, "x", "y", "Y")],
        )
        session.commit()

        assert after_ingestion == start + 1
        assert unchanged == after_ingestion
        assert after_rollback == after_ingestion
        assert generation.current(session) == after_ingestion + 1


def test_a_cursor_carries_the_total_of_the_first_page(catalog: TestClient) -> None:
    first = catalog.get(f"{BASE}/entities/by-query", params={"limit": 5}).json()
    second = catalog.get(
        f"{BASE}/entities/by-query", params={"cursor": first["pageInfo"]["nextCursor"]}
    ).json()

    assert second["totalItems"] == first["totalItems"] > 5
    assert second["pageInfo"]["prevCursor"]


def stray_rows(session: Session) -> int:
    """Search rows and relations whose entity is gone."""
    uids = select(CatalogEntity.uid)
    return len(
        session.exec(
            select(CatalogSearch.entity_uid).where(col(CatalogSearch.entity_uid).not_in(uids))
        ).all()
    ) + len(
        session.exec(
            select(CatalogRelation.origin_uid).where(col(CatalogRelation.origin_uid).not_in(uids))
        ).all()
    )


@BOTH_BACKENDS
def test_deleting_entities_takes_their_search_rows_and_relations(
    backend: str, engine: Engine, settings: Settings
) -> None:
    with Session(engine) as session:
        service.register_demo(session, settings.catalog)
        session.commit()
        model = session.exec(select(CatalogEntity).where(col(CatalogEntity.kind_key) == "model"))
        uid = model.first().uid  # type: ignore[union-attr]
        rows_of_model = session.exec(
            select(CatalogSearch.entity_uid).where(col(CatalogSearch.entity_uid) == uid)
        ).all()
        assert rows_of_model

        service.delete_entity(session, uid)
        session.commit()
        assert stray_rows(session) == 0

        for location in session.exec(select(CatalogLocation)).all():
            service.delete_location(session, location.id)
        session.commit()
        assert session.exec(select(CatalogSearch.entity_uid)).first() is None
        assert session.exec(select(CatalogRelation.origin_uid)).first() is None


@BOTH_BACKENDS
def test_entities_served_again_follow_a_change_to_them_or_to_their_relations(
    backend: str, catalog: TestClient, engine: Engine, settings: Settings
) -> None:
    with Session(engine) as session:
        model = session.exec(
            select(CatalogEntity).where(col(CatalogEntity.kind_key) == "model")
        ).first()
        assert model is not None
        owner = model.body["spec"]["owner"]
        model_ref = model.ref  # model:default/<name>
    by_name = f"{BASE}/entities/by-name/{model_ref.replace(':', '/', 1)}"
    owner_path = f"{BASE}/entities/by-name/group/default/{owner.split('/')[-1]}"

    def owner_owns_the_model() -> bool:
        relations = catalog.get(owner_path).json()["relations"]
        return {"type": "ownerOf", "targetRef": model_ref} in relations

    assert catalog.get(by_name).status_code == 200
    assert owner_owns_the_model()
    asked = {"entityRefs": [model_ref]}
    assert catalog.post(f"{BASE}/entities/by-refs", json=asked).json()["items"][0] is not None

    other_replica = create_database_engine(settings)
    try:
        with Session(other_replica) as session:
            service.delete_entity(session, model.uid)
            session.commit()
    finally:
        other_replica.dispose()

    assert eventually(lambda: catalog.get(by_name).status_code == 404) < 1
    assert catalog.post(f"{BASE}/entities/by-refs", json=asked).json()["items"] == [None]
    assert not owner_owns_the_model()


@BOTH_BACKENDS
def test_an_entity_or_page_asked_again_costs_no_database_work(
    backend: str, catalog: TestClient, engine: Engine
) -> None:
    by_name = f"{BASE}/entities/by-name/group/default/fraud"
    page = f"{BASE}/entities/by-query?filter=kind%3Dcomponent&limit=5"
    first = (catalog.get(by_name).json(), catalog.get(page).json())
    checkouts: list[object] = []

    def checked_out(*args: object) -> None:
        checkouts.append(args)

    event.listen(engine.pool, "checkout", checked_out)
    try:
        again = (catalog.get(by_name).json(), catalog.get(page).json())
    finally:
        event.remove(engine.pool, "checkout", checked_out)

    assert again == first
    assert first[0]["metadata"]["name"] == "fraud"
    assert len(first[1]["items"]) == 5
    assert checkouts == []


def test_what_is_remembered_stays_within_its_memory_dropping_the_least_recently_used() -> None:
    memory = generation._Memory(max_bytes=2000)
    for number in range(100):
        memory.put((1, number), "x" * 100)
        memory.get((1, 0))  # kept in use

    assert memory.size <= 2000
    assert memory.get((1, 99)) == (True, "x" * 100)
    assert memory.get((1, 0)) == (True, "x" * 100)
    assert memory.get((1, 50)) == (False, None)

"""The catalog REST API with Backstage's routes and semantics, on Paved's demo catalog."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from catalog import service
from portal.models import AuditEvent
from portal.settings import Settings

from conftest import BOTH_BACKENDS, ClientFactory

BASE = "/api/catalog"


@pytest.fixture
def settings(settings: Settings, tmp_path: Path) -> Settings:
    roots = tmp_path / "repos"
    roots.mkdir()
    return settings.model_copy(
        update={"catalog": settings.catalog.model_copy(update={"file_roots": [roots]})}
    )


@pytest.fixture
def demo(engine: Engine, settings: Settings) -> None:
    with Session(engine) as session:
        service.register_demo(session, settings.catalog)
        session.commit()


@pytest.fixture
def catalog(client: TestClient, demo: None) -> TestClient:
    return client


def names(items: list[dict]) -> list[str]:  # type: ignore[type-arg]
    return [item["metadata"]["name"] for item in items]


@BOTH_BACKENDS
def test_by_query_filters_like_backstage(backend: str, catalog: TestClient) -> None:
    services = catalog.get(
        f"{BASE}/entities/by-query",
        params={"filter": "kind=component,spec.type=service", "limit": 100},
    ).json()
    assert services["totalItems"] == len(services["items"]) > 3
    assert all(item["kind"] == "Component" for item in services["items"])
    assert all(item["spec"]["type"] == "service" for item in services["items"])

    # Several filter parameters are ORed; values are case-insensitive.
    either = catalog.get(
        f"{BASE}/entities/by-query",
        params=[("filter", "kind=MODEL"), ("filter", "kind=dataset"), ("limit", "100")],
    ).json()
    assert {item["kind"] for item in either["items"]} == {"Model", "Dataset"}
    assert either["totalItems"] == 16

    # The same key twice in one filter matches either value.
    both_kinds = catalog.get(
        f"{BASE}/entities/by-query", params={"filter": "kind=model,kind=dataset", "limit": 1}
    ).json()
    assert both_kinds["totalItems"] == 16

    # A bare key means the field exists.
    with_schema = catalog.get(
        f"{BASE}/entities/by-query", params={"filter": "kind=dataset,spec.schema.fields.name"}
    ).json()
    assert 0 < with_schema["totalItems"] < 8


@BOTH_BACKENDS
def test_relations_filter_and_both_directions(backend: str, catalog: TestClient) -> None:
    owned = catalog.get(
        f"{BASE}/entities/by-query",
        params={"filter": "relations.ownedBy=group:default/fraud", "limit": 100},
    ).json()
    assert "fraud-scorer" in names(owned["items"])
    assert all(item["spec"]["owner"] == "fraud" for item in owned["items"])
    fraud = catalog.get(f"{BASE}/entities/by-name/group/default/fraud").json()
    assert {"type": "ownerOf", "targetRef": "model:default/fraud-scorer"} in fraud["relations"]
    assert fraud["metadata"]["uid"]
    assert fraud["metadata"]["annotations"]["backstage.io/managed-by-location"].startswith("file:")


@BOTH_BACKENDS
def test_full_text_ordering_fields_and_cursor_paging(backend: str, catalog: TestClient) -> None:
    found = catalog.get(
        f"{BASE}/entities/by-query", params={"fullTextFilterTerm": "FRAUD scorer"}
    ).json()
    assert "fraud-scorer" in names(found["items"])

    ordered = catalog.get(
        f"{BASE}/entities/by-query",
        params={
            "filter": "kind=user",
            "orderField": "metadata.name,desc",
            "fields": "metadata.name",
            "limit": 5,
        },
    ).json()
    assert ordered["items"][0] == {"metadata": {"name": names(ordered["items"])[0]}}
    first_page = names(ordered["items"])
    assert first_page == sorted(first_page, reverse=True)

    seen = list(first_page)
    cursor = ordered["pageInfo"]["nextCursor"]
    while cursor:
        page = catalog.get(f"{BASE}/entities/by-query", params={"cursor": cursor}).json()
        assert page["totalItems"] == ordered["totalItems"]
        seen += names(page["items"])
        cursor = page["pageInfo"].get("nextCursor")
    assert len(seen) == ordered["totalItems"] == len(set(seen))
    assert seen == sorted(seen, reverse=True)

    bad = catalog.get(f"{BASE}/entities/by-query", params={"cursor": "not-a-cursor"})
    assert bad.status_code == 422
    assert bad.json()["errors"][0]["field"] == "cursor"


def test_by_refs_keeps_order_and_nulls_and_by_uid(catalog: TestClient) -> None:
    answer = catalog.post(
        f"{BASE}/entities/by-refs",
        json={
            "entityRefs": ["model:fraud-scorer", "component:default/nothing-here", "group:fraud"],
            "fields": ["kind", "metadata.name", "metadata.uid"],
        },
    ).json()
    model, missing, group = answer["items"]
    assert (model["kind"], missing, group["metadata"]["name"]) == ("Model", None, "fraud")
    by_uid = catalog.get(f"{BASE}/entities/by-uid/{model['metadata']['uid']}").json()
    assert by_uid["metadata"]["name"] == "fraud-scorer"
    bad = catalog.post(f"{BASE}/entities/by-refs", json={"entityRefs": ["no-kind-here"]})
    assert bad.status_code == 422
    assert bad.json()["errors"][0]["field"] == "entityRefs[0]"
    assert catalog.get(f"{BASE}/entities/by-name/model/default/nope").status_code == 404


def test_registering_a_location_dry_run_then_for_real_is_audited(
    client: TestClient, settings: Settings, engine: Engine
) -> None:
    roots = settings.catalog.file_roots[0]
    file = roots / "catalog-info.yaml"
    file.write_text(
        "apiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata:\n  name: scorer\n"
        "spec:\n  type: service\n  lifecycle: production\n  owner: fraud\n"
    )
    body = {"type": "file", "target": str(file)}
    dry = client.post(f"{BASE}/locations", params={"dryRun": "true"}, json=body)
    assert dry.status_code == 200
    assert names(dry.json()["entities"]) == ["scorer"]
    assert dry.json()["exists"] is False
    assert client.get(f"{BASE}/entities/by-name/component/default/scorer").status_code == 404

    created = client.post(f"{BASE}/locations", json=body)
    assert created.status_code == 201
    location = created.json()["location"]
    assert location["target"] == str(file)
    assert client.get(f"{BASE}/locations").json() == [{"data": location}]
    assert client.get(f"{BASE}/locations/by-entity/component/default/scorer").json() == location
    assert client.post(f"{BASE}/locations", json=body).status_code == 409

    outside = client.post(f"{BASE}/locations", json={"type": "file", "target": "/etc/passwd"})
    assert outside.status_code == 422
    assert outside.json()["errors"][0]["field"] == "target"

    assert client.delete(f"{BASE}/locations/{location['id']}").status_code == 204
    assert client.get(f"{BASE}/entities/by-name/component/default/scorer").status_code == 404
    with Session(engine) as session:
        events = session.exec(
            select(AuditEvent).where(col(AuditEvent.action).like("catalog.%"))
        ).all()
    assert [(e.action, e.outcome) for e in events] == [
        ("catalog.location.create", "succeeded"),
        ("catalog.location.create", "succeeded"),
        ("catalog.location.create", "failed"),
        ("catalog.location.create", "failed"),
        ("catalog.location.delete", "succeeded"),
    ]


def test_reading_needs_catalog_read_and_registering_needs_location_create(
    demo: None, client_as: ClientFactory
) -> None:
    auditor = client_as("auditor")
    assert auditor.get(f"{BASE}/entities").status_code == 403
    scientist = client_as("data_scientist", groups=["group:default/churn"])
    assert scientist.get(f"{BASE}/entities", params={"filter": "kind=domain"}).status_code == 200
    refused = scientist.post(f"{BASE}/locations", json={"type": "file", "target": "/x.yaml"})
    assert refused.status_code == 403
    assert "catalog.location.create" in refused.json()["detail"]

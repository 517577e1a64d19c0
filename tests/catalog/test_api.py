"""The catalog REST API with Backstage's routes and semantics, on Paved's demo catalog."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from portal.models import AuditEvent
from portal.settings import Settings

from conftest import BOTH_BACKENDS, ClientFactory

BASE = "/api/catalog"


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

    uncounted = catalog.get(
        f"{BASE}/entities/by-query",
        params={"filter": "kind=user", "limit": 5, "totalItems": "exclude"},
    ).json()
    assert len(uncounted["items"]) == 5
    assert uncounted["pageInfo"]["nextCursor"]  # a next page, found without counting

    bad = catalog.get(f"{BASE}/entities/by-query", params={"cursor": "not-a-cursor"})
    assert bad.status_code == 400
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
    only_models = catalog.post(
        f"{BASE}/entities/by-refs",
        json={"entityRefs": ["model:fraud-scorer", "group:fraud"], "query": {"kind": "model"}},
    ).json()["items"]
    assert [item and item["kind"] for item in only_models] == ["Model", None]
    bad = catalog.post(f"{BASE}/entities/by-refs", json={"entityRefs": ["no-kind-here"]})
    assert bad.status_code == 400
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
    assert dry.status_code == 201  # as Backstage answers a dry run
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
    assert outside.status_code == 400
    assert outside.json()["errors"][0]["field"] == "target"
    # Backstage's error members, which @backstage/catalog-client reads.
    assert outside.json()["error"]["name"] == "InputError"
    assert outside.json()["response"] == {"statusCode": 400}

    assert client.delete(f"{BASE}/locations/{location['id']}").status_code == 204
    assert client.get(f"{BASE}/entities/by-name/component/default/scorer").status_code == 404
    # Queries sent as a POST body read only: they are not audited.
    by_refs = client.post(f"{BASE}/entities/by-refs", json={"entityRefs": ["group:default/x"]})
    assert by_refs.status_code == 200
    by_query = client.post(f"{BASE}/entities/by-query", json={"query": {"kind": "group"}})
    assert by_query.status_code == 200
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


def test_predicate_queries_and_their_cursors(catalog: TestClient) -> None:
    body = {
        "query": {
            "$all": [
                {"kind": "component"},
                {"spec.lifecycle": {"$in": ["production", "experimental"]}},
                {"$not": {"spec.type": "library"}},
            ]
        },
        "orderBy": [{"field": "metadata.name", "order": "asc"}],
        "limit": 4,
        "fields": ["metadata.name", "spec"],
    }
    first = catalog.post(f"{BASE}/entities/by-query", json=body).json()
    assert first["totalItems"] > 4
    seen = names(first["items"])
    cursor = first["pageInfo"]["nextCursor"]
    while cursor:
        page = catalog.post(f"{BASE}/entities/by-query", json={"cursor": cursor}).json()
        seen += names(page["items"])
        cursor = page["pageInfo"].get("nextCursor")
    assert seen == sorted(seen)
    assert len(seen) == first["totalItems"]
    everything = catalog.get(
        f"{BASE}/entities", params={"filter": "kind=component", "fields": "metadata.name,spec"}
    ).json()
    expected = sorted(
        e["metadata"]["name"]
        for e in everything
        if e["spec"]["lifecycle"] in ("production", "experimental")
        and e["spec"]["type"] != "library"
    )
    assert seen == expected

    exists = catalog.post(
        f"{BASE}/entities/by-query",
        json={"query": {"kind": "dataset", "spec.schema.fields.name": {"$exists": True}}},
    ).json()
    assert 0 < exists["totalItems"] < 8
    bad = catalog.post(f"{BASE}/entities/by-query", json={"query": {"$nope": []}})
    assert bad.status_code == 400
    assert bad.json()["errors"][0]["field"] == "query.$nope"


def test_facets_count_values_within_the_filter(catalog: TestClient) -> None:
    facets = catalog.get(
        f"{BASE}/entity-facets",
        params=[("facet", "kind"), ("facet", "spec.type"), ("filter", "kind=model")],
    ).json()["facets"]
    assert facets["kind"] == [{"value": "Model", "count": 8}]
    assert sum(f["count"] for f in facets["spec.type"]) == 8
    tags = catalog.post(
        f"{BASE}/entity-facets", json={"facets": ["metadata.tags"], "query": {"kind": "model"}}
    ).json()["facets"]["metadata.tags"]
    assert tags[0]["count"] >= tags[-1]["count"] >= 1


def test_ancestry_leads_from_an_entity_to_its_registered_location(catalog: TestClient) -> None:
    ancestry = catalog.get(f"{BASE}/entities/by-name/user/default/alice/ancestry").json()
    refs = [
        f"{i['entity']['kind'].lower()}:default/{i['entity']['metadata']['name']}"
        for i in ancestry["items"]
    ]
    assert refs[0] == "user:default/alice"
    assert refs[1] == "location:default/northwind-demo"
    assert refs[2] == ancestry["rootEntityRef"]
    assert ancestry["rootEntityRef"].startswith("location:default/generated-")
    assert ancestry["items"][0]["parentEntityRefs"] == ["location:default/northwind-demo"]
    assert ancestry["items"][-1]["parentEntityRefs"] == []
    locations = catalog.get(f"{BASE}/locations").json()
    assert locations[0]["data"]["entityRef"] == ancestry["rootEntityRef"]


def test_locations_by_query_update_analyze_and_validate(
    client: TestClient, settings: Settings
) -> None:
    roots = settings.catalog.file_roots[0]
    component = (
        "apiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata:\n  name: {name}\n"
        "spec:\n  type: service\n  lifecycle: production\n  owner: fraud\n"
    )
    (roots / "a.yaml").write_text(component.format(name="scorer"))
    (roots / "b.yaml").write_text(component.format(name="ranker"))
    analyzed = client.post(
        f"{BASE}/analyze-location",
        json={"location": {"type": "file", "target": str(roots / "a.yaml")}},
    ).json()
    assert [f["entity"]["metadata"]["name"] for f in analyzed["existingEntityFiles"]] == ["scorer"]
    assert analyzed["existingEntityFiles"][0]["isRegistered"] is False

    created = client.post(
        f"{BASE}/locations", json={"type": "file", "target": str(roots / "a.yaml")}
    )
    location_id = created.json()["location"]["id"]
    found = client.post(
        f"{BASE}/locations/by-query", json={"query": {"target": str(roots / "a.yaml")}}
    ).json()
    assert [item["id"] for item in found["items"]] == [location_id]
    assert found["totalItems"] == 1
    none = client.post(f"{BASE}/locations/by-query", json={"query": {"type": "url"}}).json()
    assert none == {"items": [], "totalItems": 0, "pageInfo": {}}

    moved = client.put(
        f"{BASE}/locations/{location_id}", json={"type": "file", "target": str(roots / "b.yaml")}
    )
    assert moved.json()["target"] == str(roots / "b.yaml")
    ranker = client.get(f"{BASE}/entities/by-name/component/default/ranker")
    assert ranker.status_code == 200
    scorer = client.get(f"{BASE}/entities/by-name/component/default/scorer").json()
    assert scorer["metadata"]["annotations"]["backstage.io/orphan"] == "true"

    valid = client.post(
        f"{BASE}/validate-entity",
        json={"location": f"file:{roots / 'x.yaml'}", "entity": yaml_entity(component, "ok")},
    )
    assert valid.status_code == 200
    invalid = client.post(
        f"{BASE}/validate-entity",
        json={
            "location": f"file:{roots / 'x.yaml'}",
            "entity": {
                "apiVersion": "backstage.io/v1alpha1",
                "kind": "Component",
                "metadata": {"name": "x"},
                "spec": {},
            },
        },
    )
    assert invalid.status_code == 400
    assert {e["field"] for e in invalid.json()["errors"]} >= {"spec.owner", "spec.type"}
    loc = {
        "apiVersion": "backstage.io/v1alpha1",
        "kind": "Location",
        "metadata": {"name": "more"},
        "spec": {"targets": ["./a.yaml", "./missing.yaml", "/etc/passwd"]},
    }
    unreadable = client.post(
        f"{BASE}/validate-entity",
        json={"location": f"file:{roots / 'catalog-info.yaml'}", "entity": loc},
    )
    assert unreadable.status_code == 400
    messages = [e["message"] for e in unreadable.json()["errors"]]
    assert len(messages) == 2
    assert "does not exist" in messages[0]
    assert "outside the catalog's file roots" in messages[1]


def yaml_entity(template: str, name: str) -> dict:  # type: ignore[type-arg]
    import yaml

    return yaml.safe_load(template.format(name=name))  # type: ignore[no-any-return]


def test_paved_kinds_publish_their_json_schemas(client: TestClient) -> None:
    model = client.get(f"{BASE}/schemas/model").json()
    assert "trainedOn" in model["properties"]["spec"]["properties"]
    assert client.get(f"{BASE}/schemas/Dataset").status_code == 200
    assert client.get(f"{BASE}/schemas/spaceship").status_code == 404

"""Paved's catalog answers match the schemas of Backstage's catalog OpenAPI document
(catalog backend 4.0.0, in the reference folder), route by route, errors included."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from jsonschema import Draft202012Validator
from sqlalchemy.engine import Engine
from sqlmodel import Session

from catalog import service
from portal.settings import Settings

from conftest import BACKSTAGE_REFERENCE

BASE = "/api/catalog"
DOCUMENT = BACKSTAGE_REFERENCE / "openapi" / "catalog-openapi.json"


@pytest.fixture(autouse=True)
def contract_component(repos: Path) -> None:
    (repos / "catalog-info.yaml").write_text(
        "apiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata:\n  name: contract\n"
        "spec:\n  type: service\n  lifecycle: production\n  owner: fraud\n"
    )


def response_schema(document: dict[str, Any], template: str, method: str, status: int) -> Any:
    responses = document["paths"][template][method]["responses"]
    response = responses.get(str(status)) or responses.get("default")
    assert response is not None, f"{method.upper()} {template} documents no {status}"
    if "$ref" in response:
        response = document["components"]["responses"][response["$ref"].rsplit("/", 1)[-1]]
    content = response.get("content", {}).get("application/json")
    return None if content is None else content["schema"]


def test_every_catalog_route_answers_in_the_documented_shape(
    client: TestClient, engine: Engine, settings: Settings
) -> None:
    assert DOCUMENT.is_file(), f"set PAVED_CATALOG__BACKSTAGE_REFERENCE; {DOCUMENT} is missing"
    document = json.loads(DOCUMENT.read_text())
    with Session(engine) as session:
        service.register_demo(session, settings.catalog)
        session.commit()
    target = str(settings.catalog.file_roots[0] / "catalog-info.yaml")
    fraud = client.get(f"{BASE}/entities/by-name/group/default/fraud").json()
    location_id = client.get(f"{BASE}/locations").json()[0]["data"]["id"]
    first_page = client.get(f"{BASE}/entities/by-query", params={"limit": 2}).json()
    calls: list[tuple[str, str, str, dict[str, Any]]] = [
        ("get", "/entities", "/entities", {"params": {"filter": "kind=group"}}),
        ("get", "/entities/by-uid/{uid}", f"/entities/by-uid/{fraud['metadata']['uid']}", {}),
        (
            "get",
            "/entities/by-name/{kind}/{namespace}/{name}",
            "/entities/by-name/group/default/fraud",
            {},
        ),
        (
            "get",
            "/entities/by-name/{kind}/{namespace}/{name}",
            "/entities/by-name/group/default/nobody",
            {},
        ),
        (
            "get",
            "/entities/by-name/{kind}/{namespace}/{name}/ancestry",
            "/entities/by-name/user/default/alice/ancestry",
            {},
        ),
        (
            "post",
            "/entities/by-refs",
            "/entities/by-refs",
            {"json": {"entityRefs": ["group:fraud", "group:nobody"]}},
        ),
        (
            "get",
            "/entities/by-query",
            "/entities/by-query",
            {"params": {"filter": "kind=model", "orderField": "metadata.name,asc"}},
        ),
        (
            "get",
            "/entities/by-query",
            "/entities/by-query",
            {"params": {"cursor": first_page["pageInfo"]["nextCursor"]}},
        ),
        ("get", "/entities/by-query", "/entities/by-query", {"params": {"cursor": "garbage"}}),
        (
            "post",
            "/entities/by-query",
            "/entities/by-query",
            {"json": {"query": {"kind": "dataset"}, "limit": 3}},
        ),
        ("get", "/entity-facets", "/entity-facets", {"params": {"facet": ["kind", "spec.type"]}}),
        (
            "post",
            "/entity-facets",
            "/entity-facets",
            {"json": {"facets": ["kind"], "query": {"kind": "api"}}},
        ),
        ("post", "/refresh", "/refresh", {"json": {"entityRef": "group:default/fraud"}}),
        ("get", "/locations", "/locations", {}),
        ("get", "/locations/{id}", f"/locations/{location_id}", {}),
        (
            "post",
            "/locations/by-query",
            "/locations/by-query",
            {"json": {"query": {"type": "file"}}},
        ),
        (
            "get",
            "/locations/by-entity/{kind}/{namespace}/{name}",
            "/locations/by-entity/group/default/fraud",
            {},
        ),
        (
            "post",
            "/locations",
            "/locations",
            {"params": {"dryRun": "true"}, "json": {"type": "file", "target": target}},
        ),
        ("post", "/locations", "/locations", {"json": {"type": "file", "target": target}}),
        ("post", "/locations", "/locations", {"json": {"type": "file", "target": "/etc/passwd"}}),
        (
            "post",
            "/analyze-location",
            "/analyze-location",
            {"json": {"location": {"type": "file", "target": target}}},
        ),
        (
            "post",
            "/validate-entity",
            "/validate-entity",
            {
                "json": {
                    "location": f"file:{target}",
                    "entity": {
                        "apiVersion": "backstage.io/v1alpha1",
                        "kind": "Group",
                        "metadata": {"name": "x"},
                        "spec": {},
                    },
                }
            },
        ),
    ]
    checked = 0
    for method, template, path, options in calls:
        response = client.request(method.upper(), BASE + path, **options)
        schema = response_schema(document, template, method, response.status_code)
        if schema is None:
            continue
        body = response.json()
        validator = Draft202012Validator({**schema, "components": document["components"]})
        problems = [
            f"{'.'.join(map(str, e.path))}: {e.message}" for e in validator.iter_errors(body)
        ]
        assert problems == [], f"{method.upper()} {path} ({response.status_code}): {problems[:5]}"
        checked += 1
    assert checked >= 18

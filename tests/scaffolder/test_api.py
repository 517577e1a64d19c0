"""The scaffolder API with Backstage's routes and shapes, on Backstage's own templates."""

from __future__ import annotations

import json

import jsonschema
import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine
from sqlmodel import Session

from catalog import service
from portal.settings import Settings

from conftest import BACKSTAGE_REFERENCE

BASE = "/api/scaffolder/v2"
NODEJS = f"{BASE}/templates/default/template/example-nodejs-template/parameter-schema"
TEMPLATES = BACKSTAGE_REFERENCE / "templates"
OPENAPI = BACKSTAGE_REFERENCE / "openapi" / "scaffolder-openapi.json"


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(
        update={"catalog": settings.catalog.model_copy(update={"file_roots": [TEMPLATES]})}
    )


@pytest.fixture
def templates(client: TestClient, engine: Engine, settings: Settings) -> TestClient:
    """Backstage's create-app template, registered from the reference folder."""
    with Session(engine) as session:
        target = TEMPLATES / "create-app-default-template" / "template.yaml"
        service.add_location(session, "file", str(target), by="tests", settings=settings.catalog)
        session.commit()
    return client


def response_schema(name: str) -> dict[str, object]:
    document = json.loads(OPENAPI.read_text())
    return {**document["components"]["schemas"][name], "components": document["components"]}


def test_the_parameter_schema_is_one_step_per_schema_as_backstage_gives_it(
    templates: TestClient,
) -> None:
    found = templates.get(
        f"{BASE}/templates/default/template/example-nodejs-template/parameter-schema"
    )

    assert found.status_code == 200
    body = found.json()
    jsonschema.validate(body, response_schema("TemplateParameterSchema"))
    assert body["title"] == "Example Node.js Template"
    assert body["description"].startswith("An example template")
    assert [step["title"] for step in body["steps"]] == ["Fill in some steps", "Choose a location"]
    assert body["steps"][0]["schema"]["required"] == ["name"]
    assert body["steps"][1]["schema"]["properties"]["repoUrl"]["ui:field"] == "RepoUrlPicker"


def test_only_a_template_has_a_parameter_schema(templates: TestClient) -> None:
    missing = templates.get(f"{BASE}/templates/default/template/no-such-template/parameter-schema")
    assert missing.status_code == 404
    assert "no-such-template" in missing.json()["error"]["message"]

    not_a_template = templates.get(f"{BASE}/templates/default/component/x/parameter-schema")
    assert not_a_template.status_code == 422
    assert not_a_template.json()["errors"][0]["field"] == "kind"


def test_reading_a_template_needs_a_sign_in(templates: TestClient, app: object) -> None:
    anonymous = TestClient(app)  # type: ignore[arg-type]
    assert anonymous.get(NODEJS).status_code == 401


def test_the_actions_are_listed_with_their_schemas(client: TestClient) -> None:
    listed = client.get(f"{BASE}/actions")

    assert listed.status_code == 200
    body = listed.json()
    jsonschema.validate(body, {**response_schema("ListActionsResponse")})
    by_id = {action["id"]: action for action in body}
    assert {
        "fetch:template",
        "fetch:plain",
        "fs:rename",
        "fs:delete",
        "debug:log",
        "catalog:write",
        "catalog:register",
        "publish:git",
    } <= set(by_id)
    assert by_id["fs:rename"]["schema"]["input"]["required"] == ["files"]

"""Dry runs: Backstage's body (template and files inline) and a catalog template by ref,
answered with the rendered files, log and output, and nothing changed anywhere."""

from __future__ import annotations

import base64
import json

import jsonschema
import pytest
import yaml
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from catalog.models import CatalogLocation
from portal.models import Task
from portal.settings import Settings
from tests.scaffolder.conftest import TemplateMaker
from tests.scaffolder.test_tasks import SERVICE, SKELETON

from conftest import BACKSTAGE_REFERENCE

BASE = "/api/scaffolder/v2"
CREATE_APP = BACKSTAGE_REFERENCE / "templates" / "create-app-default-template"
OPENAPI = json.loads((BACKSTAGE_REFERENCE / "openapi" / "scaffolder-openapi.json").read_text())


def inline(folder_files: dict[str, bytes]) -> list[dict[str, str]]:
    return [
        {"path": path, "base64Content": base64.b64encode(content).decode()}
        for path, content in folder_files.items()
    ]


def tree(answer: dict[str, object]) -> dict[str, str]:
    return {
        file["path"]: base64.b64decode(file["base64Content"]).decode()  # type: ignore[index]
        for file in answer["directoryContents"]  # type: ignore[attr-defined]
    }


def test_backstages_create_app_template_renders_the_files_backstage_renders(
    alice: TestClient, engine: Engine, settings: Settings
) -> None:
    template = yaml.safe_load((CREATE_APP / "template.yaml").read_text())
    files = {
        f"content/{path.name}": path.read_bytes() for path in (CREATE_APP / "content").iterdir()
    }

    answer = alice.post(
        f"{BASE}/dry-run",
        json={
            "template": template,
            "values": {"name": "my-app", "repoUrl": "github.com?owner=acme&repo=my-app"},
            "directoryContents": inline(files),
        },
    )

    assert answer.status_code == 200, answer.text
    body = answer.json()
    schema = OPENAPI["paths"]["/v2/dry-run"]["post"]["responses"]["200"]["content"]
    jsonschema.validate(
        body, {**schema["application/json"]["schema"], "components": OPENAPI["components"]}
    )
    # What Backstage's fetch:template writes for these values: Nunjucks' dump is
    # JSON.stringify, so the name is quoted in catalog-info.yaml and nowhere else.
    assert tree(body) == {
        "catalog-info.yaml": (
            "apiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata:\n"
            '  name: "my-app"\nspec:\n  type: service\n  owner: user:guest\n'
            "  lifecycle: experimental\n"
        ),
        "index.js": "console.log('Hello from my-app!');\n",
        "package.json": '{\n  "name": "my-app",\n  "private": true,\n  "dependencies": {}\n}\n',
    }
    assert [step["id"] for step in body["steps"]] == ["fetch-base", "publish", "register", "notify"]
    statuses = [(e["body"].get("stepId"), e["body"].get("status")) for e in body["log"]]
    assert ("fetch-base", "completed") in statuses
    assert ("publish", "skipped") in statuses  # it would change something outside
    assert ("register", "skipped") in statuses
    assert ("notify", "completed") in statuses
    with Session(engine) as session:  # nothing queued, nothing registered
        assert session.exec(select(Task)).all() == []
        assert session.exec(select(CatalogLocation)).all() == []
    assert not settings.git_root.exists()


def test_a_catalog_template_dry_runs_by_its_ref_with_its_own_files(
    make_template: TemplateMaker, alice: TestClient, settings: Settings
) -> None:
    ref = make_template("model-service", SERVICE, SKELETON)

    answer = alice.post(
        f"{BASE}/dry-run", json={"templateRef": ref, "values": {"name": "tried", "owner": "fraud"}}
    )

    assert answer.status_code == 200, answer.text
    rendered = tree(answer.json())
    assert rendered["README.md"] == "# tried\n"
    assert "name: tried" in rendered["catalog-info.yaml"]
    assert not (settings.git_root / "fraud" / "tried.git").exists()


def test_a_dry_run_refuses_values_that_do_not_fit_naming_each_field(
    make_template: TemplateMaker, alice: TestClient
) -> None:
    ref = make_template("model-service", SERVICE, SKELETON)
    refused = alice.post(f"{BASE}/dry-run", json={"templateRef": ref, "values": {"name": "Bad"}})
    assert refused.status_code == 422
    assert {p["field"] for p in refused.json()["errors"]} == {"name", "owner"}


BROKEN = {
    "a syntax error names its line": (
        {"skeleton/app.py": b"print('ok')\nprint('${{ values.name }')\n"},
        "skeleton/app.py (line 2)",
    ),
    "a file that leads out of the workspace": (
        {"skeleton/ok.txt": b"ok"},
        "leads out of the workspace",
    ),
    "a sandbox escape is refused": (
        {"skeleton/x.txt": b"${{ values.name.__class__.__mro__ }}"},
        "out of a template's reach",
    ),
}


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_broken_templates_are_refused_clearly(alice: TestClient, case: str) -> None:
    files, said = BROKEN[case]
    target = "../outside" if "leads out" in case else "./"
    template = {
        "apiVersion": "scaffolder.backstage.io/v1beta3",
        "kind": "Template",
        "metadata": {"name": "broken"},
        "spec": {
            "steps": [
                {
                    "id": "fetch",
                    "action": "fetch:template",
                    "input": {"url": "./skeleton", "targetPath": target, "values": {"name": "x"}},
                }
            ]
        },
    }
    refused = alice.post(
        f"{BASE}/dry-run",
        json={"template": template, "values": {}, "directoryContents": inline(files)},
    )
    assert refused.status_code == 422
    assert said in refused.json()["detail"]
    assert "step fetch (fetch) failed" in refused.json()["detail"]


def test_a_template_with_an_unknown_action_is_refused_before_anything_runs(
    make_template: TemplateMaker, alice: TestClient, engine: Engine
) -> None:
    ref = make_template(
        "typo",
        SERVICE.replace("action: publish:git", "action: publish:gti").replace(
            "name: model-service", "name: typo"
        ),
        SKELETON,
    )
    refused = alice.post(
        f"{BASE}/tasks", json={"templateRef": ref, "values": {"name": "x", "owner": "fraud"}}
    )
    assert refused.status_code == 422
    assert refused.json()["errors"][0]["field"] == "spec.steps[1].action"
    assert "'publish:gti' is not an action" in refused.json()["detail"]
    with Session(engine) as session:
        assert session.exec(select(Task)).all() == []


def test_a_dry_run_needs_a_template(alice: TestClient) -> None:
    refused = alice.post(f"{BASE}/dry-run", json={"values": {}})
    assert refused.status_code == 422
    assert refused.json()["errors"][0]["field"] == "template"


def test_files_sent_inline_must_stay_inside_the_template(alice: TestClient) -> None:
    refused = alice.post(
        f"{BASE}/dry-run",
        json={
            "template": {"spec": {"steps": []}},
            "values": {},
            "directoryContents": [{"path": "../../etc/passwd", "base64Content": ""}],
        },
    )
    assert refused.status_code == 422
    assert refused.json()["errors"][0]["field"] == "directoryContents[0].path"


def test_templating_extensions_list_backstages_filters(alice: TestClient) -> None:
    found = alice.get(f"{BASE}/templating-extensions")
    assert found.status_code == 200
    schema = OPENAPI["components"]["schemas"]["ListTemplatingExtensionsResponse"]
    jsonschema.validate(found.json(), {**schema, "components": OPENAPI["components"]})
    filters = found.json()["filters"]
    assert {"parseRepoUrl", "parseEntityRef", "pick", "projectSlug"} <= set(filters)
    assert filters["parseRepoUrl"]["description"].startswith("``github.com?owner=acme")


def test_an_expression_that_does_not_render_is_refused_naming_where_it_is(
    alice: TestClient,
) -> None:
    template = {
        "spec": {
            "steps": [
                {"id": "say", "action": "debug:log", "input": {"message": "${{ parameters | }}"}},
            ]
        }
    }

    refused = alice.post(f"{BASE}/dry-run", json={"template": template, "values": {}})

    assert refused.status_code == 422
    problem = refused.json()["errors"][0]
    assert problem["field"] == "spec.steps[0].input.message"
    assert problem["expected"].startswith("${{ <expression> }}")


def test_a_template_file_that_does_not_render_is_refused_naming_the_file(
    alice: TestClient,
) -> None:
    files = {"skeleton/README.md": b"# title\n\n${{ values.name | }}\n"}
    template = {
        "spec": {
            "steps": [
                {"id": "fetch", "action": "fetch:template", "input": {"url": "./skeleton"}},
            ]
        }
    }

    refused = alice.post(
        f"{BASE}/dry-run",
        json={"template": template, "values": {}, "directoryContents": inline(files)},
    )

    assert refused.status_code == 422
    problem = refused.json()["errors"][0]
    assert problem["field"] == "./skeleton/README.md"
    assert "(line 3)" in problem["message"]

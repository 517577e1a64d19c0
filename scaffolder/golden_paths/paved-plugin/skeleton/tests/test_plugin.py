"""The plugin as people meet it: its page and navigation item, its routes gated by its
actions, its Rego rules and their tests, its task and its scaffolder action."""

from __future__ import annotations

from pathlib import Path

from conftest import SignIn
from fastapi import FastAPI
from portal.policy import PolicySource, run_policy_tests
from portal.worker import Worker
from scaffolder.steps import NoFiles, StepContext

from ${{ values.module }} import TITLE
from ${{ values.module }}.steps import CHECKLIST

FRAUD = ("group:default/fraud",)
CATALOG = """\
apiVersion: backstage.io/v1alpha1
kind: Component
metadata: {name: scorer}
spec: {type: service, lifecycle: production, owner: fraud}
---
apiVersion: backstage.io/v1alpha1
kind: Component
metadata: {name: forecaster}
spec: {type: service, lifecycle: experimental, owner: group:default/demand}
"""


def register_catalog(sign_in: SignIn, tmp_path: Path) -> None:
    (tmp_path / "catalog-info.yaml").write_text(CATALOG)
    admin = sign_in("admin", user="user:default/root")
    answer = admin.post(
        "/api/catalog/locations",
        json={"type": "file", "target": str(tmp_path / "catalog-info.yaml")},
    )
    assert answer.status_code == 201, answer.text


def test_the_page_and_its_navigation_item_show_for_an_engineer(sign_in: SignIn) -> None:
    page = sign_in("ml_engineer", groups=FRAUD).get("/${{ values.name }}")

    assert page.status_code == 200
    assert f"<h1>{TITLE}</h1>" in page.text
    assert 'href="/${{ values.name }}"' in page.text  # the navigation item


def test_an_auditor_is_denied_the_page_with_the_reason(sign_in: SignIn) -> None:
    denied = sign_in("auditor").get("/api/${{ values.name }}/components")

    assert denied.status_code == 403
    assert "${{ values.area }}.page.read" in denied.text


def test_the_components_listed_are_the_teams_own(sign_in: SignIn, tmp_path: Path) -> None:
    register_catalog(sign_in, tmp_path)

    listed = sign_in("data_scientist", groups=FRAUD).get("/api/${{ values.name }}/components")

    assert listed.status_code == 200
    assert [component["name"] for component in listed.json()] == ["scorer"]


def test_an_engineer_asks_for_a_review_and_the_task_logs_it(
    sign_in: SignIn, tmp_path: Path, app: FastAPI
) -> None:
    register_catalog(sign_in, tmp_path)
    engineer = sign_in("ml_engineer", groups=FRAUD)

    asked = engineer.post(
        "/api/${{ values.name }}/reviews",
        json={"component": "component:default/scorer", "note": "new features"},
    )
    assert asked.status_code == 202, asked.text
    settings = app.state.settings
    worker = Worker(
        app.state.engine, app.state.task_handlers.values(), settings.tasks, portal_settings=settings
    )
    assert worker.run_once()

    task_id = asked.json()["task_id"]
    assert engineer.get(f"/api/tasks/{task_id}").json()["status"] == "succeeded"
    log = [line["message"] for line in engineer.get(f"/api/tasks/{task_id}/log").json()]
    assert "review of component:default/scorer requested: new features" in log


def test_a_review_of_another_teams_component_names_the_field(
    sign_in: SignIn, tmp_path: Path
) -> None:
    register_catalog(sign_in, tmp_path)

    refused = sign_in("ml_engineer", groups=FRAUD).post(
        "/api/${{ values.name }}/reviews", json={"component": "component:default/forecaster"}
    )

    assert refused.status_code == 422
    assert "component" in refused.text


def test_a_scientist_may_not_ask_for_a_review(sign_in: SignIn) -> None:
    denied = sign_in("data_scientist", groups=FRAUD).post(
        "/api/${{ values.name }}/reviews", json={"component": "component:default/scorer"}
    )

    assert denied.status_code == 403


def test_someone_in_no_team_is_told_why_they_cannot_ask(sign_in: SignIn) -> None:
    denied = sign_in("ml_engineer").post(
        "/api/${{ values.name }}/reviews", json={"component": "component:default/scorer"}
    )

    assert denied.status_code == 403
    assert "you are in no team yet" in denied.text


def test_its_rego_tests_pass_beside_paveds_own(app: FastAPI) -> None:
    results = run_policy_tests(PolicySource.read(app.state.policy_folders))

    failed = [f"{result.name}: {result.error}" for result in results if not result.passed]
    assert failed == []
    assert any(result.file.endswith("${{ values.area }}_test.rego") for result in results)


def test_the_scaffolder_action_is_listed_and_writes_its_checklist(
    sign_in: SignIn, tmp_path: Path
) -> None:
    listed = sign_in("ml_engineer", groups=FRAUD).get("/api/scaffolder/v2/actions").json()
    assert "${{ values.name }}:checklist" in {action["id"] for action in listed}

    lines: list[str] = []
    context = StepContext(workspace=tmp_path, log=lines.append, files=NoFiles(), is_dry_run=True)
    output = CHECKLIST(context, {"path": "docs/REVIEW.md", "items": ["tests pass"]})

    assert output == {"path": "docs/REVIEW.md", "items": 1}
    checklist = (tmp_path / "docs" / "REVIEW.md").read_text()
    assert checklist == "# Review checklist\n\n- [ ] tests pass\n"

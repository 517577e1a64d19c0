"""Template runs as tasks: published, registered, followed, cancelled, retried, audited."""

from __future__ import annotations

import json
import subprocess
from datetime import timedelta
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import text, update
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from portal import tasks
from portal.db import utcnow
from portal.models import AuditEvent, Task, TaskLog
from portal.plugins import Plugins
from portal.settings import Settings
from portal.worker import Worker
from scaffolder import service
from scaffolder.models import ScaffolderRun
from scaffolder.steps import StepAction, StepContext
from scaffolder.steps.builtin import DEBUG_LOG
from tests.scaffolder.conftest import ALICE, FRAUD, TemplateMaker

from conftest import BACKSTAGE_REFERENCE, BOTH_BACKENDS, ClientFactory
from factories import throwaway_plugin

BASE = "/api/scaffolder/v2"
OPENAPI = BACKSTAGE_REFERENCE / "openapi" / "scaffolder-openapi.json"

SERVICE = """
apiVersion: scaffolder.backstage.io/v1beta3
kind: Template
metadata: {name: model-service, title: Model service}
spec:
  owner: group:default/platform
  type: service
  parameters:
    - title: About the service
      required: [name, owner]
      properties:
        name: {type: string, title: Name, pattern: "^[a-z][a-z0-9-]*$"}
        owner: {type: string, title: Owner, ui:field: OwnerPicker}
  steps:
    - id: fetch
      name: Fetch the skeleton
      action: fetch:template
      input:
        url: ./skeleton
        values: {name: "${{ parameters.name }}", owner: "${{ parameters.owner }}"}
    - id: publish
      name: Publish
      action: publish:git
      input:
        repoUrl: "paved?owner=fraud&repo=${{ parameters.name }}"
    - id: register
      name: Register
      action: catalog:register
      input:
        repoContentsUrl: "${{ steps.publish.output.repoContentsUrl }}"
        catalogInfoPath: /catalog-info.yaml
  output:
    links:
      - title: Repository
        url: "${{ steps.publish.output.remoteUrl }}"
      - title: Open in catalog
        entityRef: "${{ steps.register.output.entityRef }}"
"""
SKELETON = {
    "skeleton/catalog-info.yaml": """\
        apiVersion: backstage.io/v1alpha1
        kind: Component
        metadata:
          name: ${{ values.name }}
        spec:
          type: service
          lifecycle: experimental
          owner: ${{ values.owner }}
        """,
    "skeleton/README.md": "# ${{ values.name }}\n",
}


def response_schema(name: str) -> dict[str, object]:
    document = json.loads(OPENAPI.read_text())
    return {**document["components"]["schemas"][name], "components": document["components"]}


def start(client: TestClient, ref: str, values: dict[str, object], **extra: object) -> str:
    created = client.post(f"{BASE}/tasks", json={"templateRef": ref, "values": values, **extra})
    assert created.status_code == 201, created.text
    return str(created.json()["id"])


def events(client: TestClient, task_id: str) -> list[dict[str, object]]:
    found = client.get(f"{BASE}/tasks/{task_id}/events")
    assert found.status_code == 200
    return list(found.json())


def steps_seen(found: list[dict[str, object]]) -> list[tuple[object, object]]:
    return [
        (event["body"].get("stepId"), event["body"].get("status"))  # type: ignore[union-attr]
        for event in found
        if event["body"].get("status")  # type: ignore[union-attr]
    ]


@BOTH_BACKENDS
def test_a_run_publishes_a_repository_and_registers_its_entity_as_its_author(
    backend: str,
    make_template: TemplateMaker,
    alice: TestClient,
    worker: Worker,
    engine: Engine,
    settings: Settings,
) -> None:
    ref = make_template("model-service", SERVICE, SKELETON)
    task_id = start(alice, ref, {"name": "fraud-scorer", "owner": "fraud"})
    assert alice.get(f"{BASE}/tasks/{task_id}").json()["status"] == "open"

    assert worker.run_once()

    task = alice.get(f"{BASE}/tasks/{task_id}").json()
    jsonschema.validate(task, response_schema("SerializedTask"))
    assert task["status"] == "completed", events(alice, task_id)
    assert task["createdBy"] == ALICE
    assert task["spec"]["parameters"] == {"name": "fraud-scorer", "owner": "fraud"}
    assert task["spec"]["templateInfo"]["entityRef"] == ref
    found = events(alice, task_id)
    for event in found:
        jsonschema.validate(event, response_schema("SerializedTaskEvent"))
    assert steps_seen(found) == [
        ("fetch", "processing"),
        ("fetch", "completed"),
        ("publish", "processing"),
        ("publish", "completed"),
        ("register", "processing"),
        ("register", "completed"),
        (None, "completed"),
    ]
    completion = found[-1]
    assert completion["type"] == "completion"
    repository = settings.git_root / "fraud" / "fraud-scorer.git"
    assert completion["body"]["output"] == {  # type: ignore[index]
        "links": [
            {"title": "Repository", "url": repository.as_uri()},
            {"title": "Open in catalog", "entityRef": "component:default/fraud-scorer"},
        ]
    }

    committed = subprocess.run(
        ["git", f"--git-dir={repository}", "ls-tree", "-r", "--name-only", "main"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert committed == ["README.md", "catalog-info.yaml"]
    entity = alice.get("/api/catalog/entities/by-name/component/default/fraud-scorer")
    assert entity.status_code == 200
    assert entity.json()["spec"]["owner"] == "fraud"
    with Session(engine) as session:
        audited = session.exec(
            select(AuditEvent).where(AuditEvent.actor == ALICE).order_by(AuditEvent.id)
        ).all()
    assert [(e.action, e.outcome, e.detail.get("task")) for e in audited] == [
        ("scaffolder.template.run", "succeeded", None),
        ("scaffolder.repository.create", "succeeded", int(task_id)),
        ("catalog.location.create", "succeeded", int(task_id)),
    ]
    assert not (settings.workspace_root / "tasks" / task_id).exists()  # thrown away at the end


def test_values_that_do_not_fit_the_form_are_refused_naming_each_field(
    make_template: TemplateMaker, alice: TestClient, engine: Engine
) -> None:
    ref = make_template("model-service", SERVICE, SKELETON)

    refused = alice.post(
        f"{BASE}/tasks", json={"templateRef": ref, "values": {"name": "Not A Name"}}
    )

    assert refused.status_code == 422
    fields = {problem["field"] for problem in refused.json()["errors"]}
    assert fields == {"name", "owner"}
    assert refused.json()["error"]["name"] == "InputError"
    with Session(engine) as session:
        assert session.exec(select(ScaffolderRun)).all() == []


def test_a_template_ref_that_is_not_a_template_is_refused(
    make_template: TemplateMaker, alice: TestClient
) -> None:
    make_template("model-service", SERVICE, SKELETON)
    missing = alice.post(
        f"{BASE}/tasks", json={"templateRef": "template:default/nope", "values": {}}
    )
    assert missing.status_code == 404
    wrong = alice.post(f"{BASE}/tasks", json={"templateRef": "group:default/fraud", "values": {}})
    assert wrong.status_code == 422
    assert wrong.json()["errors"][0]["field"] == "templateRef"


def test_creating_a_project_for_another_team_is_denied_with_the_reason(
    make_template: TemplateMaker, alice: TestClient, engine: Engine
) -> None:
    ref = make_template("model-service", SERVICE, SKELETON)

    denied = alice.post(
        f"{BASE}/tasks", json={"templateRef": ref, "values": {"name": "x", "owner": "churn"}}
    )

    assert denied.status_code == 403
    assert denied.json()["reasons"] == [
        "you may only create projects owned by you or a group you belong to, and you are "
        "not a member of group:default/churn"
    ]
    with Session(engine) as session:
        assert session.exec(select(ScaffolderRun)).all() == []


def test_a_step_the_policy_denies_its_author_fails_the_run_with_the_reason(
    make_template: TemplateMaker, client_as: ClientFactory, worker: Worker, engine: Engine
) -> None:
    ref = make_template("model-service", SERVICE, SKELETON)
    dana = client_as("data_scientist", user="user:default/dana", groups=[FRAUD])
    task_id = start(dana, ref, {"name": "dana-model", "owner": "fraud"})

    worker.run_once()

    assert dana.get(f"{BASE}/tasks/{task_id}").json()["status"] == "failed"
    failed = [e for e in events(dana, task_id) if e["body"].get("status") == "failed"]  # type: ignore[union-attr]
    assert failed[0]["body"]["stepId"] == "register"  # type: ignore[index]
    assert "none of your roles (data_scientist) allows catalog.location.create" in str(
        failed[0]["body"]["message"]  # type: ignore[index]
    )
    with Session(engine) as session:
        denial = session.exec(
            select(AuditEvent).where(AuditEvent.action == "catalog.location.create")
        ).one()
    assert (denial.actor, denial.outcome, denial.detail["task"]) == (
        "user:default/dana",
        "denied",
        int(task_id),
    )


SECRET_TEMPLATE = """
apiVersion: scaffolder.backstage.io/v1beta3
kind: Template
metadata: {name: with-secret}
spec:
  owner: group:default/platform
  type: service
  parameters:
    - properties:
        password: {type: string, ui:widget: password}
  steps:
    - id: say
      action: debug:log
      input: {message: "token ${{ secrets.token }} and password ${{ parameters.password }}"}
"""


def test_an_owner_left_to_its_default_is_decided_on_like_one_sent(
    make_template: TemplateMaker, alice: TestClient
) -> None:
    defaulted = SERVICE.replace(
        "owner: {type: string, title: Owner, ui:field: OwnerPicker}",
        "owner: {type: string, title: Owner, ui:field: OwnerPicker, default: churn}",
    ).replace("required: [name, owner]", "required: [name]")
    ref = make_template("model-service", defaulted, SKELETON)

    denied = alice.post(f"{BASE}/tasks", json={"templateRef": ref, "values": {"name": "x"}})

    assert denied.status_code == 403
    assert "not a member of group:default/churn" in denied.json()["reasons"][0]


def test_a_secret_field_a_choice_brings_in_is_never_stored_in_clear(
    make_template: TemplateMaker, alice: TestClient, engine: Engine
) -> None:
    branching = SERVICE.replace(
        "owner: {type: string, title: Owner, ui:field: OwnerPicker}",
        "owner: {type: string, title: Owner, ui:field: OwnerPicker}\n"
        "        registry: {type: string, enum: [public, private]}\n"
        "      dependencies:\n"
        "        registry:\n"
        "          oneOf:\n"
        "            - properties: {registry: {const: public}}\n"
        "            - properties:\n"
        "                registry: {const: private}\n"
        "                pullToken: {type: string, ui:field: Secret}",
    )
    ref = make_template("model-service", branching, SKELETON)
    values = {"name": "x", "owner": FRAUD, "registry": "private", "pullToken": "pull-5ecret"}

    task_id = start(alice, ref, values)

    with engine.connect() as connection:
        assert "5ecret" not in str(connection.execute(text("SELECT * FROM scaffolder_run")).all())
    assert "pullToken" not in alice.get(f"{BASE}/tasks/{task_id}").json()["spec"]["parameters"]


def test_secrets_are_masked_in_the_log_and_never_stored_in_clear(
    make_template: TemplateMaker, alice: TestClient, worker: Worker, engine: Engine
) -> None:
    ref = make_template("with-secret", SECRET_TEMPLATE)
    task_id = start(alice, ref, {"password": "hunter2-pw"}, secrets={"token": "tok-5ecret-value"})
    with engine.connect() as connection:
        stored = connection.execute(text("SELECT * FROM scaffolder_run")).all()
    assert "5ecret" not in str(stored)
    assert "hunter2" not in str(stored)
    assert alice.get(f"{BASE}/tasks/{task_id}").json()["spec"]["parameters"] == {}

    worker.run_once()

    messages = [str(e["body"]["message"]) for e in events(alice, task_id)]  # type: ignore[index]
    assert "token *** and password ***" in messages
    assert not any("5ecret" in m or "hunter2" in m for m in messages)
    with Session(engine) as session:
        run = session.get(ScaffolderRun, int(task_id))
        assert run is not None
        assert run.sealed_secrets is None  # erased once the run is done
        lines = session.exec(select(TaskLog.message)).all()
    assert not any("5ecret" in line for line in lines)


@BOTH_BACKENDS
def test_a_failed_run_is_retried_from_the_step_that_failed(
    backend: str,
    make_template: TemplateMaker,
    alice: TestClient,
    worker: Worker,
    settings: Settings,
) -> None:
    ref = make_template("model-service", SERVICE, SKELETON)
    taken = settings.git_root / "fraud" / "scorer.git"
    taken.mkdir(parents=True)
    task_id = start(alice, ref, {"name": "scorer", "owner": "fraud"})

    worker.run_once()

    assert alice.get(f"{BASE}/tasks/{task_id}").json()["status"] == "failed"
    failed = events(alice, task_id)[-1]
    assert failed["type"] == "completion"
    assert "the repository fraud/scorer exists already" in str(failed["body"]["message"])  # type: ignore[index]

    taken.rmdir()
    retried = alice.post(f"{BASE}/tasks/{task_id}/retry")
    assert retried.status_code == 201
    assert retried.json() == {"id": task_id}
    worker.run_once()

    assert alice.get(f"{BASE}/tasks/{task_id}").json()["status"] == "completed"
    seen = steps_seen(events(alice, task_id))
    assert seen.count(("fetch", "completed")) == 1  # not run again
    assert seen.count(("publish", "completed")) == 1
    assert seen[-1] == (None, "completed")


def test_secrets_sent_with_a_retry_are_added_to_those_of_the_form(
    make_template: TemplateMaker, alice: TestClient, worker: Worker, engine: Engine
) -> None:
    ref = make_template("with-secret", SECRET_TEMPLATE)
    task_id = start(alice, ref, {"password": "hunter2-pw"}, secrets={"token": "first-token"})
    assert alice.post(f"{BASE}/tasks/{task_id}/cancel").status_code == 200

    retried = alice.post(f"{BASE}/tasks/{task_id}/retry", json={"secrets": {"token": "new-tok"}})
    assert retried.status_code == 201
    worker.run_once()

    messages = [str(e["body"]["message"]) for e in events(alice, task_id)]  # type: ignore[index]
    assert "token *** and password ***" in messages  # both still there, both masked
    assert alice.get(f"{BASE}/tasks/{task_id}").json()["status"] == "completed"


def test_only_a_finished_run_that_failed_is_retried(
    make_template: TemplateMaker, alice: TestClient
) -> None:
    ref = make_template("model-service", SERVICE, SKELETON)
    task_id = start(alice, ref, {"name": "scorer", "owner": "fraud"})
    refused = alice.post(f"{BASE}/tasks/{task_id}/retry")
    assert refused.status_code == 409
    assert "only a failed or cancelled one is retried" in refused.json()["error"]["message"]


def test_a_waiting_run_is_cancelled_by_its_author_and_no_one_else(
    make_template: TemplateMaker,
    alice: TestClient,
    client_as: ClientFactory,
    worker: Worker,
    settings: Settings,
) -> None:
    ref = make_template("model-service", SERVICE, SKELETON)
    task_id = start(alice, ref, {"name": "scorer", "owner": "fraud"})
    bob = client_as("ml_engineer", user="user:default/bob", groups=[FRAUD])

    assert bob.post(f"{BASE}/tasks/{task_id}/cancel").status_code == 403
    cancelled = alice.post(f"{BASE}/tasks/{task_id}/cancel")

    assert cancelled.status_code == 200
    assert cancelled.json() == {"status": "cancelled"}
    assert worker.run_once() is False
    assert not (settings.git_root / "fraud" / "scorer.git").exists()


def test_runs_are_listed_newest_first_by_author_and_status(
    make_template: TemplateMaker, alice: TestClient, client: TestClient, worker: Worker
) -> None:
    ref = make_template("model-service", SERVICE, SKELETON)
    first = start(alice, ref, {"name": "one", "owner": "fraud"})
    worker.run_once()
    second = start(alice, ref, {"name": "two", "owner": "fraud"})

    listed = alice.get(f"{BASE}/tasks").json()
    jsonschema.validate(listed, response_schema("ListTasksResponse"))
    assert [task["id"] for task in listed["tasks"]] == [second, first]
    assert listed["totalTasks"] == 2
    open_ones = alice.get(f"{BASE}/tasks", params={"status": "open"}).json()
    assert [task["id"] for task in open_ones["tasks"]] == [second]
    assert alice.get(f"{BASE}/tasks", params={"createdBy": "user:default/bob"}).json() == {
        "tasks": [],
        "totalTasks": 0,
    }
    assert alice.get(f"{BASE}/tasks", params={"status": "sleeping"}).status_code == 422


def test_the_event_stream_sends_every_event_then_the_completion(
    make_template: TemplateMaker, alice: TestClient, worker: Worker
) -> None:
    ref = make_template("model-service", SERVICE, SKELETON)
    task_id = start(alice, ref, {"name": "streamed", "owner": "fraud"})
    worker.run_once()

    with alice.stream("GET", f"{BASE}/tasks/{task_id}/eventstream") as stream:
        assert stream.headers["content-type"].startswith("text/event-stream")
        kinds = [
            line.removeprefix("event: ").strip()
            for line in stream.iter_lines()
            if line.startswith("event: ")
        ]
    assert kinds[-1] == "completion"
    assert kinds.count("log") == len(kinds) - 1 >= 6


def test_plugins_add_actions_that_templates_run(
    installed_plugins: object,
    settings: Settings,
    engine: Engine,
    make_template: TemplateMaker,
) -> None:
    from portal.app import create_app
    from portal.plugins import Plugins

    from conftest import issue_secret

    installed_plugins("lineage")  # type: ignore[operator]
    app = create_app(settings, plugins=Plugins.discover(), engine=engine)
    ref = make_template(
        "with-lineage",
        """
        apiVersion: scaffolder.backstage.io/v1beta3
        kind: Template
        metadata: {name: with-lineage}
        spec:
          owner: group:default/platform
          type: model
          steps:
            - id: note
              action: lineage:record
              input: {model: churn, dataset: transactions}
          output:
            text: [{title: Edge, content: "${{ steps.note.output.edge }}"}]
        """,
    )
    secret = issue_secret(engine, roles=["ml_engineer"], user=ALICE, groups=[FRAUD])
    with TestClient(app, headers={"Authorization": f"Bearer {secret}"}) as client:
        listed = {action["id"] for action in client.get(f"{BASE}/actions").json()}
        dry = client.post(f"{BASE}/dry-run", json={"templateRef": ref, "values": {}})

    assert "lineage:record" in listed
    assert dry.status_code == 200, dry.text
    body = dry.json()
    assert body["output"] == {"text": [{"title": "Edge", "content": "transactions->churn"}]}
    assert body["directoryContents"][0]["path"] == "LINEAGE.md"
    assert {"body": {"message": "churn derives from transactions", "stepId": "note"}} in body["log"]


@pytest.mark.parametrize("field", ["templateRef", "values"])
def test_a_run_request_without_its_fields_is_refused(alice: TestClient, field: str) -> None:
    body = {"templateRef": "template:default/x", "values": {}}
    del body[field]
    refused = alice.post(f"{BASE}/tasks", json=body)
    assert refused.status_code == 422
    assert field in json.dumps(refused.json()["errors"])


def test_the_workspace_of_a_failed_run_is_kept_for_its_retry(
    make_template: TemplateMaker, alice: TestClient, worker: Worker, settings: Settings
) -> None:
    ref = make_template("model-service", SERVICE, SKELETON)
    (settings.git_root / "fraud" / "kept.git").mkdir(parents=True)
    task_id = start(alice, ref, {"name": "kept", "owner": "fraud"})
    worker.run_once()
    workspace = settings.workspace_root / "tasks" / task_id
    assert sorted(p.name for p in Path(workspace).iterdir()) == ["README.md", "catalog-info.yaml"]


NOTED = """
apiVersion: scaffolder.backstage.io/v1beta3
kind: Template
metadata: {name: noted}
spec:
  owner: group:default/platform
  type: service
  steps:
    - id: note
      action: test:note
"""


def test_plugin_actions_are_collected_once_and_a_taken_id_is_said_once(
    plugins: Plugins, make_template: TemplateMaker, alice: TestClient, worker: Worker
) -> None:
    collected: list[str] = []

    def contribute() -> list[StepAction]:
        collected.append("note")
        note = StepAction("test:note", "Notes nothing", lambda context, given: {}, {})
        return [note]

    ref = make_template("noted", NOTED)
    with (
        throwaway_plugin(plugins, "noting", paved_scaffolder_actions=contribute),
        throwaway_plugin(plugins, "zz_copycat", paved_scaffolder_actions=lambda: [DEBUG_LOG]),
    ):
        for _ in range(3):
            listed = {action["id"] for action in alice.get(f"{BASE}/actions").json()}
        dry = alice.post(f"{BASE}/dry-run", json={"templateRef": ref, "values": {}})
        task_id = start(alice, ref, {})
        worker.run_once()
        problems = plugins.records["zz_copycat"].problems

    assert "test:note" in listed
    assert dry.status_code == 200, dry.text
    assert alice.get(f"{BASE}/tasks/{task_id}").json()["status"] == "completed"
    assert collected == ["note"]  # requests and the worker's run share one collection
    assert problems == ["scaffolder action debug:log is already taken"]


def test_a_repository_that_exists_already_fails_the_run_naming_its_field(
    make_template: TemplateMaker, alice: TestClient, worker: Worker, settings: Settings
) -> None:
    ref = make_template("model-service", SERVICE, SKELETON)
    (settings.git_root / "fraud" / "scorer.git").mkdir(parents=True)
    task_id = start(alice, ref, {"name": "scorer", "owner": "fraud"})

    worker.run_once()

    found = events(alice, task_id)
    failed = next(e for e in found if e["body"].get("status") == "failed")  # type: ignore[union-attr]
    jsonschema.validate(failed, response_schema("SerializedTaskEvent"))
    assert failed["body"]["stepId"] == "publish"  # type: ignore[index]
    assert failed["body"]["errors"] == [  # type: ignore[index]
        {
            "field": "input.repoUrl",
            "message": "the repository fraud/scorer exists already",
            "expected": "a repository that does not exist yet",
        }
    ]
    assert "input.repoUrl: the repository fraud/scorer exists already" in str(
        found[-1]["body"]["message"]  # type: ignore[index]
    )


STOPPED = """
apiVersion: scaffolder.backstage.io/v1beta3
kind: Template
metadata: {name: stopped}
spec:
  owner: group:default/platform
  type: service
  parameters:
    - required: [name]
      properties:
        name: {type: string}
  steps:
    - id: fetch
      action: fetch:template
      input: {url: ./skeleton, values: {name: "${{ parameters.name }}", owner: fraud}}
    - id: stop
      action: test:stop
    - id: publish
      action: publish:git
      input: {repoUrl: "paved?owner=fraud&repo=${{ parameters.name }}"}
"""


def workspace(settings: Settings, task_id: str) -> Path:
    return settings.workspace_root / "tasks" / task_id


def test_a_run_cancelled_while_it_runs_loses_its_workspace_and_its_retry_renders_again(
    plugins: Plugins,
    make_template: TemplateMaker,
    alice: TestClient,
    worker: Worker,
    engine: Engine,
    settings: Settings,
) -> None:
    def stop(context: StepContext, given: dict[str, Any]) -> dict[str, Any]:
        assert context.task_id is not None
        with Session(engine) as session:
            tasks.request_cancel(session, context.task_id, by=ALICE)
            session.commit()
        return {}

    # It changes something outside the workspace (the task), so a retry does not repeat it.
    stopper = StepAction("test:stop", "Cancels its run", stop, {}, supports_dry_run=False)
    ref = make_template("stopped", STOPPED, SKELETON)
    with throwaway_plugin(plugins, "stopper", paved_scaffolder_actions=lambda: [stopper]):
        task_id = start(alice, ref, {"name": "resumed"})
        worker.run_once()

        assert alice.get(f"{BASE}/tasks/{task_id}").json()["status"] == "cancelled"
        assert not workspace(settings, task_id).exists()

        assert alice.post(f"{BASE}/tasks/{task_id}/retry").status_code == 201
        worker.run_once()

    assert alice.get(f"{BASE}/tasks/{task_id}").json()["status"] == "completed"
    seen = steps_seen(events(alice, task_id))
    assert seen.count(("fetch", "completed")) == 2  # rendered again: its files were gone
    assert seen.count(("stop", "completed")) == 1
    committed = subprocess.run(
        ["git", f"--git-dir={settings.git_root / 'fraud' / 'resumed.git'}", "ls-tree", "main"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "README.md" in committed


def test_cancelling_a_retry_that_waits_removes_the_workspace_its_failure_left(
    make_template: TemplateMaker, alice: TestClient, worker: Worker, settings: Settings
) -> None:
    ref = make_template("model-service", SERVICE, SKELETON)
    (settings.git_root / "fraud" / "scorer.git").mkdir(parents=True)
    task_id = start(alice, ref, {"name": "scorer", "owner": "fraud"})
    worker.run_once()
    assert workspace(settings, task_id).exists()

    assert alice.post(f"{BASE}/tasks/{task_id}/retry").status_code == 201
    cancelled = alice.post(f"{BASE}/tasks/{task_id}/cancel")

    assert cancelled.json() == {"status": "cancelled"}
    assert not workspace(settings, task_id).exists()


def fail_run(client: TestClient, ref: str, name: str, worker: Worker, settings: Settings) -> str:
    """A run that fails at publishing, its repository name being taken."""
    (settings.git_root / "fraud" / f"{name}.git").mkdir(parents=True)
    task_id = start(client, ref, {"name": name, "owner": "fraud"})
    worker.run_once()
    assert client.get(f"{BASE}/tasks/{task_id}").json()["status"] == "failed"
    return task_id


def age(engine: Engine, task_id: str, hours: float) -> None:
    with Session(engine) as session:
        session.execute(
            update(Task)
            .where(col(Task.id) == int(task_id))
            .values(finished_at=utcnow() - timedelta(hours=hours))
        )
        session.commit()


def test_a_failed_runs_workspace_is_kept_for_its_retry_until_the_retention_ends(
    make_template: TemplateMaker,
    alice: TestClient,
    worker: Worker,
    engine: Engine,
    settings: Settings,
) -> None:
    assert settings.scaffolder.failed_workspace_retention_hours == 72
    ref = make_template("model-service", SERVICE, SKELETON)
    old = fail_run(alice, ref, "old", worker, settings)
    young = fail_run(alice, ref, "young", worker, settings)
    age(engine, old, hours=73)
    age(engine, young, hours=71)

    start(alice, ref, {"name": "third", "owner": "fraud"})
    worker.run_once()  # a run's end sweeps

    assert not workspace(settings, old).exists()
    assert workspace(settings, young).exists()
    for task_id, name in ((young, "young"), (old, "old")):
        (settings.git_root / "fraud" / f"{name}.git").rmdir()
        assert alice.post(f"{BASE}/tasks/{task_id}/retry").status_code == 201
        worker.run_once()
        assert alice.get(f"{BASE}/tasks/{task_id}").json()["status"] == "completed"
    # Within the retention the retry picks up in the workspace; after it, renders again.
    assert steps_seen(events(alice, young)).count(("fetch", "completed")) == 1
    assert steps_seen(events(alice, old)).count(("fetch", "completed")) == 2


def test_the_portal_sweeps_workspaces_no_retry_needs_as_it_starts(
    app: FastAPI,
    make_template: TemplateMaker,
    alice: TestClient,
    worker: Worker,
    engine: Engine,
    settings: Settings,
) -> None:
    ref = make_template("model-service", SERVICE, SKELETON)
    old = fail_run(alice, ref, "old", worker, settings)
    age(engine, old, hours=100)
    leftover = workspace(settings, "4242")
    leftover.mkdir()  # a folder that names no run is not the scaffolder's to remove

    with TestClient(app):
        pass

    assert not workspace(settings, old).exists()
    assert leftover.exists()
    with Session(engine) as session:
        assert service.sweep_workspaces(session, settings=settings) == []

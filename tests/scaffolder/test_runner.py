"""Running a template: values checked, steps run in order with what came before, output."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from portal.errors import InvalidInput
from scaffolder.runner import StepEvent, check_values, run
from scaffolder.steps import InlineFiles, StepAction, StepContext, registry
from scaffolder.steps.builtin import BUILT_IN_ACTIONS

from conftest import BACKSTAGE_REFERENCE

TEMPLATE = yaml.safe_load(
    """
apiVersion: scaffolder.backstage.io/v1beta3
kind: Template
metadata: {name: model-service, title: Model service}
spec:
  owner: group:default/platform
  type: service
  parameters:
    - title: About the service
      required: [name]
      properties:
        name: {type: string, title: Name, pattern: "^[a-z][a-z0-9-]*$", ui:autofocus: true}
        withDocs: {type: boolean, title: With docs}
  steps:
    - id: fetch
      name: Fetch the skeleton
      action: fetch:template
      input:
        url: ./skeleton
        values: {name: "${{ parameters.name }}"}
    - id: docs
      name: Drop the docs
      if: "${{ not parameters.withDocs }}"
      action: fs:delete
      input: {files: [docs]}
    - id: echo
      name: Say where
      action: echo
      input: {where: "${{ parameters.name }}/README.md", by: "${{ user.entity.metadata.name }}"}
    - id: log
      action: debug:log
      input: {message: "wrote ${{ steps.echo.output.where }}"}
  output:
    links:
      - title: Repository
        url: "https://git.example.com/${{ parameters.name }}"
    text:
      - title: Made by
        content: "${{ steps.echo.output.by }}"
"""
)
FILES = {
    "skeleton/${{ values.name }}/README.md": b"# ${{ values.name }}\n",
    "skeleton/docs/index.md": b"docs\n",
}
USER = {"ref": "user:default/ada", "entity": {"metadata": {"name": "ada"}}}
ECHO = StepAction("echo", "Give back what it is given.", lambda _, given: given, {"type": "object"})


def actions() -> dict[str, StepAction]:
    return registry([*BUILT_IN_ACTIONS, ECHO])


@pytest.fixture
def context(tmp_path: Path) -> StepContext:
    workspace = tmp_path / "workspace"
    workspace.mkdir()
    return StepContext(workspace, lambda line: None, InlineFiles(FILES))


def test_steps_run_in_order_each_seeing_the_ones_before(context: StepContext) -> None:
    events: list[StepEvent] = []

    result = run(
        TEMPLATE,
        {"name": "scorer", "withDocs": False},
        actions=actions(),
        context=context,
        user=USER,
        on_step=events.append,
    )

    assert (context.workspace / "scorer" / "README.md").read_text() == "# scorer\n"
    assert not (context.workspace / "docs").exists()
    assert result.steps["echo"]["output"] == {"where": "scorer/README.md", "by": "ada"}
    assert result.output == {
        "links": [{"title": "Repository", "url": "https://git.example.com/scorer"}],
        "text": [{"title": "Made by", "content": "ada"}],
    }
    assert [(event.step_id, event.status) for event in events] == [
        ("fetch", "processing"),
        ("fetch", "completed"),
        ("docs", "processing"),
        ("docs", "completed"),
        ("echo", "processing"),
        ("echo", "completed"),
        ("log", "processing"),
        ("log", "completed"),
    ]


def test_a_step_whose_condition_is_false_is_skipped(context: StepContext) -> None:
    events: list[StepEvent] = []

    run(
        TEMPLATE,
        {"name": "scorer", "withDocs": True},
        actions=actions(),
        context=context,
        user=USER,
        on_step=events.append,
    )

    assert (context.workspace / "docs" / "index.md").exists()
    assert StepEvent("docs", "Drop the docs", "skipped", "its condition is false") in events


def test_values_that_fail_the_form_name_their_field_and_nothing_runs(
    context: StepContext,
) -> None:
    events: list[StepEvent] = []
    with pytest.raises(InvalidInput) as refused:
        run(TEMPLATE, {"name": "Not A Name"}, actions=actions(), context=context, user=USER,
            on_step=events.append)  # fmt: skip

    assert refused.value.errors[0].field == "name"
    assert events == []
    assert list(context.workspace.iterdir()) == []
    assert [p.field for p in check_values(TEMPLATE, {})] == ["name"]


def test_an_unknown_action_is_refused_before_any_step_runs(context: StepContext) -> None:
    template: dict[str, Any] = yaml.safe_load(yaml.safe_dump(TEMPLATE))
    template["spec"]["steps"].append({"id": "ship", "action": "publish:nowhere", "input": {}})

    with pytest.raises(InvalidInput) as refused:
        run(template, {"name": "scorer"}, actions=actions(), context=context, user=USER)

    assert refused.value.errors[0].field == "spec.steps[4].action"
    assert "publish:nowhere" in refused.value.errors[0].message
    assert list(context.workspace.iterdir()) == []


def test_a_failing_step_is_named_and_told_as_failed(context: StepContext) -> None:
    template: dict[str, Any] = yaml.safe_load(yaml.safe_dump(TEMPLATE))
    template["spec"]["steps"][1]["input"] = {"files": ["../../outside"]}
    events: list[StepEvent] = []

    with pytest.raises(InvalidInput, match=r"step Drop the docs \(docs\) failed"):
        run(template, {"name": "scorer"}, actions=actions(), context=context, user=USER,
            on_step=events.append)  # fmt: skip

    assert events[-1].step_id == "docs"
    assert events[-1].status == "failed"
    assert "leads out of the workspace" in events[-1].message


def test_an_action_that_crashes_fails_its_step_and_the_run_goes_on_being_told(
    context: StepContext, caplog: pytest.LogCaptureFixture
) -> None:
    def crash(_: StepContext, given: dict[str, Any]) -> dict[str, Any]:
        raise ConnectionError(f"cannot reach {given['where']}")

    crashing = StepAction("echo", "Crashes, as a plugin's action may.", crash, {"type": "object"})
    events: list[StepEvent] = []

    with pytest.raises(InvalidInput, match=r"step Say where \(echo\) failed: echo failed unexp"):
        run(TEMPLATE, {"name": "scorer"}, actions={**actions(), "echo": crashing},
            context=context, user=USER, on_step=events.append)  # fmt: skip

    assert (events[-1].step_id, events[-1].status) == ("echo", "failed")
    assert "ConnectionError: cannot reach scorer/README.md" in events[-1].message
    # The server's log says where it happened, not the message (which may hold a value).
    assert "ConnectionError" in caplog.text
    assert "scorer/README.md" not in caplog.text


def test_backstages_create_app_form_checks_its_values() -> None:
    template = yaml.safe_load(
        (
            BACKSTAGE_REFERENCE / "templates" / "create-app-default-template" / "template.yaml"
        ).read_text()
    )

    assert [problem.field for problem in check_values(template, {})] == ["name", "repoUrl"]
    assert check_values(template, {"name": "x", "repoUrl": "github.com?owner=a&repo=x"}) == []

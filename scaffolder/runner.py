"""Running a template: its values checked against its parameters, then each step's input
rendered and its action run in the workspace, one after the other, then its output.

As Backstage's workflow runner does: a step sees ``parameters``, the ``steps`` before it
(``steps.<id>.output``), the ``user`` who started the run and ``context``; a step whose
``if`` renders false is skipped; the template's ``output`` (links, text) is rendered last.
Every step's outcome is told to ``on_step`` as it happens, so a run can be followed live.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from jsonschema import Draft202012Validator

from portal.errors import FieldProblem, InvalidInput
from portal.validation import schema_problems
from scaffolder.steps import StepAction, StepContext


@dataclass(frozen=True)
class StepEvent:
    """A step starting, finishing, skipped or failing."""

    step_id: str
    name: str
    status: str  # processing, completed, skipped, failed
    message: str = ""


@dataclass
class RunResult:
    output: dict[str, Any]
    steps: dict[str, dict[str, Any]] = field(default_factory=dict)  # each step's output


def check_values(template: Mapping[str, Any], values: Mapping[str, Any]) -> list[FieldProblem]:
    """``values`` against every step of the template's form; each problem named by its
    field (``name``, ``repoUrl``), as the form shows it."""
    spec = template.get("spec") or {}
    parameters = spec.get("parameters") or []
    problems: list[FieldProblem] = []
    for schema in parameters if isinstance(parameters, list) else [parameters]:
        if isinstance(schema, Mapping):
            problems += schema_problems(Draft202012Validator(_form_schema(schema)), dict(values))
    return problems


def run(
    template: Mapping[str, Any],
    values: Mapping[str, Any],
    *,
    actions: Mapping[str, StepAction],
    context: StepContext,
    user: Mapping[str, Any],
    on_step: Callable[[StepEvent], None] = lambda event: None,
) -> RunResult:
    """Run every step of ``template`` with ``values``; raises InvalidInput naming the step
    that failed (its action's own error inside)."""
    problems = check_values(template, values)
    if problems:
        raise InvalidInput(f"{problems[0].field}: {problems[0].message}", problems)
    spec = template.get("spec") or {}
    result = RunResult(output={})
    scope: dict[str, Any] = {
        "parameters": dict(values),
        "steps": result.steps,
        "user": dict(user),
        "context": {"task": {}},
    }
    templater = context.templater
    steps = list(spec.get("steps") or [])
    # Every action is known before the first step runs: nothing half-made for a typo.
    for index, step in enumerate(steps):
        if str(step.get("action")) not in actions:
            raise InvalidInput.for_field(
                f"spec.steps[{index}].action",
                f"{step.get('action')!r} is not an action",
                f"one of {', '.join(sorted(actions))}",
            )
    for index, step in enumerate(steps):
        step_id = str(step.get("id") or f"step-{index + 1}")
        name = str(step.get("name") or step_id)
        where = f"spec.steps[{index}]"
        action = actions[str(step["action"])]
        if "if" in step:
            condition = templater.render_value(step["if"], scope, field=f"{where}.if")
            if not _truthy(condition):
                on_step(StepEvent(step_id, name, "skipped", "its condition is false"))
                continue
        on_step(StepEvent(step_id, name, "processing"))
        try:
            given = templater.render_value(step.get("input") or {}, scope, field=f"{where}.input")
            output = action(context, given)
        except InvalidInput as exc:
            on_step(StepEvent(step_id, name, "failed", exc.detail))
            raise InvalidInput(f"step {name} ({step_id}) failed: {exc.detail}", exc.errors) from exc
        result.steps[step_id] = {"output": output}
        on_step(StepEvent(step_id, name, "completed"))
    result.output = templater.render_value(spec.get("output") or {}, scope, field="spec.output")
    return result


def _form_schema(step: Mapping[str, Any]) -> dict[str, Any]:
    """A form step as plain JSON schema: ``ui:`` keys and the step's own title left out."""

    def plain(value: Any) -> Any:
        if isinstance(value, Mapping):
            return {k: plain(v) for k, v in value.items() if not str(k).startswith("ui:")}
        if isinstance(value, list):
            return [plain(item) for item in value]
        return value

    schema = plain(step)
    schema.setdefault("type", "object")
    return schema  # type: ignore[no-any-return]


def _truthy(value: Any) -> bool:
    """As Backstage reads an ``if``: false, "false", empty and nothing are false."""
    if isinstance(value, str):
        return value.strip().lower() not in ("", "false")
    return bool(value)

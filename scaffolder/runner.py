"""Running a template: its values checked against its parameters, then each step's input
rendered and its action run in the workspace, one after the other, then its output.

As Backstage's workflow runner does: a step sees ``parameters``, the ``steps`` before it
(``steps.<id>.output``), the ``user`` who started the run and ``context``; a step whose
``if`` renders false is skipped; the template's ``output`` (links, text) is rendered last.
Every step's outcome is told to ``on_step`` as it happens, so a run can be followed live.
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

from jsonschema import Draft202012Validator

from portal.errors import Denied, FieldProblem, InvalidInput, PavedError
from portal.validation import schema_problems
from scaffolder import parameters
from scaffolder.steps import StepAction, StepContext

log = logging.getLogger("paved.scaffolder")


@dataclass(frozen=True)
class StepEvent:
    """A step starting, finishing, skipped or failing (a finished one with its output)."""

    step_id: str
    name: str
    status: str  # processing, completed, skipped, failed
    message: str = ""
    output: dict[str, Any] | None = None
    problems: tuple[FieldProblem, ...] = ()  # a failed step's, each naming its field


@dataclass
class RunResult:
    output: dict[str, Any]
    steps: dict[str, dict[str, Any]] = field(default_factory=dict)  # each step's output


def validate_values(template: Mapping[str, Any], values: Mapping[str, Any]) -> dict[str, Any]:
    """``values`` with the form's defaults filled in; InvalidInput naming every field of
    the form they do not fit."""
    filled = fill_defaults(template, values)
    problems = check_values(template, filled)
    if problems:
        raise InvalidInput(f"{problems[0].field}: {problems[0].message}", problems)
    return filled


def check_values(template: Mapping[str, Any], values: Mapping[str, Any]) -> list[FieldProblem]:
    """``values`` against every step of the template's form; each problem named by its
    field (``name``, ``repoUrl``), as the form shows it."""
    problems: list[FieldProblem] = []
    for step in parameters.steps_of(template):
        problems += schema_problems(
            Draft202012Validator(parameters.form_schema(step)), dict(values)
        )
    return problems


def fill_defaults(template: Mapping[str, Any], values: Mapping[str, Any]) -> dict[str, Any]:
    """``values`` with the form's defaults for the fields left out, as Backstage's form
    fills them in (also those of the fields the values given bring in)."""
    filled = dict(values)
    for step in parameters.steps_of(template):
        for name, spec in parameters.shown(step, filled).properties.items():
            if "default" in spec and name not in filled:
                filled[name] = spec["default"]
    return filled


def run(
    template: Mapping[str, Any],
    values: Mapping[str, Any],
    *,
    actions: Mapping[str, StepAction],
    context: StepContext,
    user: Mapping[str, Any],
    secrets: Mapping[str, str] | None = None,
    done: Mapping[str, dict[str, Any]] | None = None,
    on_step: Callable[[StepEvent], None] = lambda event: None,
    before_step: Callable[[], None] = lambda: None,
) -> RunResult:
    """Run every step of ``template`` with ``values``; raises InvalidInput naming the step
    that failed (its action's own error inside).

    ``done`` holds the outputs of steps an earlier attempt finished: they are not run again
    (a retry starts at the step that failed). ``before_step`` is called before each step
    (to stop a cancelled run between steps). On a dry run, an action that would change
    something outside the workspace is skipped and says so.
    """
    values = validate_values(template, values)
    spec = template.get("spec") or {}
    result = RunResult(output={})
    scope: dict[str, Any] = {
        "parameters": dict(values),
        "secrets": dict(secrets or {}),
        "steps": result.steps,
        "user": dict(user),
        "context": {"task": {"id": context.task_id}, "isDryRun": context.is_dry_run},
    }
    templater = context.templater
    steps = list(spec.get("steps") or [])
    # Every action is known before the first step runs: nothing half-made for a typo.
    check_actions(spec, actions)
    finished = dict(done or {})
    for index, step in enumerate(steps):
        step_id = step_id_of(step, index)
        name = str(step.get("name") or step_id)
        where = f"spec.steps[{index}]"
        action = actions[str(step["action"])]
        if step_id in finished:
            result.steps[step_id] = {"output": finished[step_id]}
            continue
        before_step()
        if "if" in step:
            condition = templater.render_value(step["if"], scope, field=f"{where}.if")
            if not _is_truthy(condition):
                on_step(StepEvent(step_id, name, "skipped", "its condition is false"))
                continue
        if context.is_dry_run and not action.supports_dry_run:
            result.steps[step_id] = {"output": {}}
            message = f"Skipping because {action.id} does not support dry-run"
            on_step(StepEvent(step_id, name, "skipped", message))
            continue
        on_step(StepEvent(step_id, name, "processing", f"Beginning step {name}"))
        try:
            given = templater.render_value(step.get("input") or {}, scope, field=f"{where}.input")
            output = action(context, given)
        except PavedError as exc:
            said = exc.detail
            if isinstance(exc, Denied) and exc.reasons:
                said = f"{said} {'; '.join(exc.reasons)}"
            # The field each problem names (``input.repoUrl``, a template file's path) goes
            # with the failure, whatever the error (a Conflict names one too).
            errors = list(exc.errors)
            on_step(StepEvent(step_id, name, "failed", said, problems=tuple(errors)))
            raise InvalidInput(f"step {name} ({step_id}) failed: {said}", errors) from exc
        except Exception as exc:
            # An action's own failure (a plugin's, git's): the run fails, told through
            # on_step, where secrets are masked; the server log gets where it happened, not
            # the message, which may hold a value.
            said = f"{action.id} failed unexpectedly ({type(exc).__name__}: {exc})"
            log.error(
                "step %s of a template run raised %s at\n%s",
                step_id,
                type(exc).__name__,
                "".join(traceback.format_tb(exc.__traceback__)),
            )
            on_step(StepEvent(step_id, name, "failed", said))
            raise InvalidInput(f"step {name} ({step_id}) failed: {said}") from exc
        result.steps[step_id] = {"output": output}
        on_step(StepEvent(step_id, name, "completed", f"Finished step {name}", output))
    result.output = templater.render_value(spec.get("output") or {}, scope, field="spec.output")
    return result


def check_actions(spec: Mapping[str, Any], known: Collection[str]) -> None:
    """Every step names an action in ``known``; InvalidInput naming the first that does not."""
    for index, step in enumerate(spec.get("steps") or []):
        if str(step.get("action")) not in known:
            raise InvalidInput.for_field(
                f"spec.steps[{index}].action",
                f"{step.get('action')!r} is not an action",
                f"one of {', '.join(sorted(known))}",
            )


def step_id_of(step: Mapping[str, Any], index: int) -> str:
    """A step's id, as its events and ``steps.<id>`` name it."""
    return str(step.get("id") or f"step-{index + 1}")


def _is_truthy(value: Any) -> bool:
    """As Backstage reads an ``if``: false, "false", empty and nothing are false."""
    if isinstance(value, str):
        return value.strip().lower() not in ("", "false")
    return bool(value)

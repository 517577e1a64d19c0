"""The actions a template's steps run (``debug:log``, ``fs:rename``, ``fs:delete``...):
each with the JSON schemas of its input and output, listed by ``GET /v2/actions``, its input
checked before it runs. An action works inside its run's workspace and nowhere else."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator

from catalog.validation.problems import schema_problems
from portal.errors import InvalidInput


@dataclass
class StepContext:
    """What an action sees of its run: the workspace and the run's log."""

    workspace: Path
    log: Callable[[str], None]

    def path(self, relative: str, *, field: str) -> Path:
        """``relative`` inside the workspace; a path that leads out of it is refused."""
        root = self.workspace.resolve()
        found = (root / relative).resolve()
        if found != root and root not in found.parents:
            raise InvalidInput.for_field(
                field, f"{relative!r} leads out of the workspace", "a path inside the workspace"
            )
        return found


Run = Callable[[StepContext, dict[str, Any]], dict[str, Any]]


@dataclass(frozen=True)
class StepAction:
    """One action: what it does, the input it takes and the output it gives."""

    id: str
    description: str
    run: Run
    input_schema: Mapping[str, Any]
    output_schema: Mapping[str, Any] = field(default_factory=lambda: {"type": "object"})
    examples: tuple[Mapping[str, str], ...] = ()

    def listed(self) -> dict[str, Any]:
        """As ``GET /v2/actions`` lists it."""
        shown: dict[str, Any] = {
            "id": self.id,
            "description": self.description,
            "schema": {"input": dict(self.input_schema), "output": dict(self.output_schema)},
        }
        if self.examples:
            shown["examples"] = [dict(example) for example in self.examples]
        return shown

    def __call__(self, context: StepContext, given: Mapping[str, Any]) -> dict[str, Any]:
        """Check ``given`` against the input schema, then run."""
        problems = schema_problems(Draft202012Validator(dict(self.input_schema)), given, "input")
        if problems:
            raise InvalidInput(f"{self.id}: {problems[0].field}: {problems[0].message}", problems)
        return self.run(context, dict(given))


def registry(actions: Iterable[StepAction]) -> dict[str, StepAction]:
    """Actions by id; two with one id is a mistake to say at start-up."""
    found: dict[str, StepAction] = {}
    for action in actions:
        if action.id in found:
            raise ValueError(f"two scaffolder actions are named {action.id}")
        found[action.id] = action
    return found

"""A template's parameters: the JSON-schema steps of its form, and which fields a step
shows for the values given so far.

Backstage's form (react-jsonschema-form, draft 07) brings fields in through
``dependencies`` (a field needs others, or adds a schema, or picks one ``oneOf`` branch by
its value) and through ``if``/``then``/``else``, also inside ``allOf``. Paved checks values
with draft 2020-12, where ``dependencies`` became ``dependentRequired`` and
``dependentSchemas``: :func:`form_schema` says it in the newer words."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from jsonschema import Draft202012Validator

# The pickers whose value is the new project's owner, as Backstage names them.
OWNER_PICKERS = ("OwnerPicker", "MyGroupsPicker")


def steps_of(template: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The form's steps: ``spec.parameters`` is one schema or a list of them."""
    parameters = (template.get("spec") or {}).get("parameters") or []
    steps = parameters if isinstance(parameters, list) else [parameters]
    return [step for step in steps if isinstance(step, Mapping)]


def form_schema(step: Mapping[str, Any]) -> dict[str, Any]:
    """A form step as plain JSON schema (draft 2020-12): ``ui:`` keys and the step's own
    title left out, draft 07's ``dependencies`` said as ``dependentRequired`` and
    ``dependentSchemas``."""
    schema = _translate_schema(step)
    schema.setdefault("type", "object")
    return schema  # type: ignore[no-any-return]


def _translate_schema(value: Any) -> Any:
    """``value`` (a schema, or a part of one) in draft 2020-12's words, without ``ui:`` keys."""
    if isinstance(value, list):
        return [_translate_schema(item) for item in value]
    if not isinstance(value, Mapping):
        return value
    plain = {k: _translate_schema(v) for k, v in value.items() if not str(k).startswith("ui:")}
    dependencies = plain.pop("dependencies", None)
    if isinstance(dependencies, Mapping):
        for name, dependency in dependencies.items():
            key = "dependentRequired" if isinstance(dependency, list) else "dependentSchemas"
            plain.setdefault(key, {})[name] = dependency
    return plain


@dataclass
class Shown:
    """The fields a step shows, in order, and the names of those it requires."""

    properties: dict[str, Mapping[str, Any]] = field(default_factory=dict)
    required: set[str] = field(default_factory=set)

    def add(self, schema: Mapping[str, Any], *, leave_out: str | None = None) -> None:
        """Bring in a branch's fields (not ``leave_out``: the field that chose the branch
        keeps its own spec) and what it requires."""
        for name, spec in (schema.get("properties") or {}).items():
            if name != leave_out and isinstance(spec, Mapping):
                self.properties.setdefault(str(name), spec)
        self.required.update(str(name) for name in schema.get("required") or [])


def shown(step: Mapping[str, Any], values: Mapping[str, Any]) -> Shown:
    """The fields of ``step`` for ``values``: its own, then those its ``dependencies`` and
    ``if``/``then``/``else`` bring in for the values given so far, and those the branches
    brought in bring in themselves."""
    found = Shown()
    found.add(step)
    pending, seen = [step], {id(step)}
    while pending:
        schema = pending.pop(0)
        for name, dependency in (schema.get("dependencies") or {}).items():
            if is_given(values.get(name)) and isinstance(dependency, list):
                found.required.update(str(needed) for needed in dependency)
        for branch, chooser in _choose_branches(schema, values):
            if id(branch) not in seen:
                seen.add(id(branch))
                found.add(branch, leave_out=chooser)
                pending.append(branch)
    return found


def _choose_branches(
    schema: Mapping[str, Any], values: Mapping[str, Any]
) -> list[tuple[Mapping[str, Any], str | None]]:
    """The schemas ``schema``'s dependencies and conditions choose for ``values``, each with
    the field that chose it by its value (a ``oneOf`` branch), if one did."""
    chosen: list[tuple[Mapping[str, Any], str | None]] = []
    for name, dependency in (schema.get("dependencies") or {}).items():
        if not is_given(values.get(name)) or not isinstance(dependency, Mapping):
            continue
        chosen.append((dependency, None))
        for branch in dependency.get("oneOf") or []:
            if isinstance(branch, Mapping) and _chooses(branch, str(name), values):
                chosen.append((branch, str(name)))
                break
    for condition in [schema, *(schema.get("allOf") or [])]:
        if isinstance(condition, Mapping) and isinstance(condition.get("if"), Mapping):
            is_met = Draft202012Validator(_translate_schema(condition["if"])).is_valid(dict(values))
            branch = condition.get("then" if is_met else "else")
            if isinstance(branch, Mapping):
                chosen.append((branch, None))
    return chosen


def _chooses(branch: Mapping[str, Any], name: str, values: Mapping[str, Any]) -> bool:
    """Whether a ``oneOf`` branch is the one ``values[name]`` picks (by its enum or const)."""
    spec = (branch.get("properties") or {}).get(name)
    if not isinstance(spec, Mapping):
        return False
    narrowed = {"properties": {name: _translate_schema(spec)}}
    return Draft202012Validator(narrowed).is_valid({name: values.get(name)})


def is_given(value: Any) -> bool:
    """Whether a field has a value, as the form sees it: not empty, not left out."""
    return value not in (None, "", [], {})


def fields_shown(
    template: Mapping[str, Any], values: Mapping[str, Any]
) -> list[tuple[str, Mapping[str, Any]]]:
    """Every field the form shows for ``values``, step after step."""
    return [
        (name, spec)
        for step in steps_of(template)
        for name, spec in shown(step, values).properties.items()
    ]


def every_field(template: Mapping[str, Any]) -> list[tuple[str, Mapping[str, Any]]]:
    """Every field the form could show, whatever the values: those of every step and of
    every branch its dependencies and conditions hold (for rules that must not miss one,
    such as which fields are secret)."""
    found: list[tuple[str, Mapping[str, Any]]] = []
    pending: list[Any] = list(steps_of(template))
    while pending:
        schema = pending.pop(0)
        if not isinstance(schema, Mapping):
            continue
        found += [
            (str(name), spec)
            for name, spec in (schema.get("properties") or {}).items()
            if isinstance(spec, Mapping)
        ]
        for dependency in (schema.get("dependencies") or {}).values():
            if isinstance(dependency, Mapping):
                pending += [dependency, *(dependency.get("oneOf") or [])]
        for condition in [schema, *(schema.get("allOf") or [])]:
            if isinstance(condition, Mapping):
                pending += [condition.get("then"), condition.get("else")]
    return found

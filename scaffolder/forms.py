"""A template's form as the portal shows it: each JSON-schema field as an input, with the
pickers Backstage's form has (owner, entity, repository location, entity name), values read
back from a posted HTML form, and problems shown beside their fields."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from starlette.datastructures import FormData

from portal.errors import FieldProblem
from scaffolder import parameters, secrets
from scaffolder.templating import parse_repo_url

ENTITY_PICKERS = ("EntityPicker", "OwnedEntityPicker")
REPO_PICKER = "RepoUrlPicker"
REPO_PARTS = ("host", "owner", "repo")


@dataclass
class FormField:
    """One input of the form."""

    name: str
    title: str
    # text, textarea, password, number, checkbox, select, multiselect, entity, repo, json
    widget: str
    description: str = ""
    required: bool = False
    value: Any = None
    options: list[tuple[str, str]] = field(default_factory=list)  # (value, label)
    pattern: str | None = None
    problems: list[FieldProblem] = field(default_factory=list)
    parts: dict[str, str] = field(default_factory=dict)  # a repository location's parts
    hosts: list[str] = field(default_factory=list)
    search_url: str = ""  # where an entity picker finds its choices as one types


@dataclass
class FormStep:
    title: str
    description: str
    fields: list[FormField]


@dataclass(frozen=True)
class Choices:
    """What the pickers offer: the groups of whoever fills the form and the hosts
    repositories may be published to (entity pickers search the catalog as one types)."""

    groups: Sequence[str]
    hosts: Sequence[str]


def entity_filter(spec: Mapping[str, Any]) -> list[str]:
    """An entity picker's choices as catalog filters (``kind=component,spec.type=service``):
    its ``allowedKinds`` and its ``catalogFilter`` (one mapping or a list, any of them)."""
    options = spec.get("ui:options") or {}
    kinds = [str(kind) for kind in options.get("allowedKinds") or []]
    given = options.get("catalogFilter") or {}
    filters = given if isinstance(given, list) else [given]
    found = []
    for one in filters or [{}]:
        if not isinstance(one, Mapping):
            continue
        pairs = []
        for key, wanted in one.items():
            if isinstance(wanted, Mapping):  # {exists: true}: the field is there at all
                pairs += [str(key)] if wanted.get("exists") is True else []
                continue
            for value in wanted if isinstance(wanted, list) else [wanted]:
                if isinstance(value, str | int | bool):
                    text = str(value).lower() if isinstance(value, bool) else str(value)
                    pairs.append(f"{key}={text}")
        if kinds and "kind" not in one:
            found += [",".join([f"kind={kind}", *pairs]) for kind in kinds]
        elif pairs:
            found.append(",".join(pairs))
    return found  # none: any entity, as Backstage's picker offers


def build(
    template: Mapping[str, Any],
    values: Mapping[str, Any],
    problems: Sequence[FieldProblem],
    choices: Choices,
) -> list[FormStep]:
    """The form's steps and fields, filled with ``values`` and ``problems`` beside them."""
    by_field: dict[str, list[FieldProblem]] = {}
    for problem in problems:
        by_field.setdefault(problem.field.split(".")[0].split("[")[0], []).append(problem)
    built = []
    for step in parameters.steps_of(template):
        shown = parameters.shown(step, values)
        fields = [
            _build_field(name, spec, name in shown.required, values.get(name), choices)
            for name, spec in shown.properties.items()
        ]
        for item in fields:
            item.problems = by_field.get(item.name, [])
        built.append(
            FormStep(str(step.get("title") or ""), str(step.get("description") or ""), fields)
        )
    return built


def _build_field(
    name: str, spec: Mapping[str, Any], required: bool, value: Any, choices: Choices
) -> FormField:
    ui_field = spec.get("ui:field")
    kind = spec.get("type")
    made = FormField(
        name=name,
        title=str(spec.get("title") or name),
        description=str(spec.get("description") or spec.get("ui:help") or ""),
        required=required,
        value=spec.get("default") if value is None else value,
        # The HTML attribute is anchored already: only the schema's own anchors go.
        pattern=(
            str(spec["pattern"]).removeprefix("^").removesuffix("$")
            if spec.get("pattern")
            else None
        ),
        widget="text",
    )
    if secrets.is_secret(spec):
        made.widget = "password"
        made.value = None  # never sent back to the browser
    elif ui_field in parameters.OWNER_PICKERS:
        made.widget = "select"
        made.options = [(group, group.split("/")[-1]) for group in choices.groups]
    elif ui_field in ENTITY_PICKERS:
        made.widget = "entity"
        made.search_url = "/create/entities?" + urlencode(
            [("filter", one) for one in entity_filter(spec)]
            + ([("owned", "true")] if ui_field == "OwnedEntityPicker" else [])
            + [("field", name)]
        )
    elif ui_field == REPO_PICKER:
        made.widget = "repo"
        allowed = (spec.get("ui:options") or {}).get("allowedHosts") or []
        made.hosts = [host for host in choices.hosts if not allowed or host in allowed]
        made.hosts = made.hosts or list(choices.hosts)
        made.parts = _split_repo_url(value)
    elif "enum" in spec:
        made.widget = "select"
        names = spec.get("enumNames") or spec.get("ui:enumNames") or spec["enum"]
        made.options = [(str(v), str(label)) for v, label in zip(spec["enum"], names, strict=False)]
    elif kind == "array" and isinstance(spec.get("items"), Mapping) and "enum" in spec["items"]:
        made.widget = "multiselect"
        made.options = [(str(v), str(v)) for v in spec["items"]["enum"]]
    elif kind == "array":
        made.widget = "lines"
    elif kind == "boolean":
        made.widget = "checkbox"
    elif kind in ("integer", "number"):
        made.widget = "number"
    elif kind == "object":
        made.widget = "json"
    elif spec.get("ui:widget") == "textarea":
        made.widget = "textarea"
    return made


def _split_repo_url(value: Any) -> dict[str, str]:
    try:
        return parse_repo_url(value) if isinstance(value, str) and value else {}
    except ValueError:
        return {}


def read_posted(form: FormData) -> dict[str, list[str]]:
    """A posted form's fields, each with its values (the CSRF token left out)."""
    return {
        key: [value for value in form.getlist(key) if isinstance(value, str)]
        for key in form
        if key != "csrf_token"
    }


def read_values(template: Mapping[str, Any], posted: Mapping[str, list[str]]) -> dict[str, Any]:
    """The values a posted form holds, typed as the template's schema says; a value that
    does not fit is kept as typed, for the schema check to name."""
    values: dict[str, Any] = {}
    for step in parameters.steps_of(template):
        # A field's value may bring in more fields (dependencies, if/then): read until the
        # fields shown no longer change.
        read: set[str] = set()
        while unread := [
            (name, spec)
            for name, spec in parameters.shown(step, values).properties.items()
            if name not in read
        ]:
            for name, spec in unread:
                read.add(name)
                value = _read(name, spec, posted)
                if value is not None:
                    values[name] = value
    return values


def _read(name: str, spec: Mapping[str, Any], posted: Mapping[str, list[str]]) -> Any:
    kind = spec.get("type")
    if spec.get("ui:field") == REPO_PICKER:
        parts = {part: (posted.get(f"{name}.{part}") or [""])[0].strip() for part in REPO_PARTS}
        if not parts["repo"]:
            return None
        return f"{parts['host']}?{urlencode({'owner': parts['owner'], 'repo': parts['repo']})}"
    if kind == "boolean":
        return bool(posted.get(name)) and posted[name][-1] not in ("", "false")
    given = [item for item in posted.get(name, []) if item != ""]
    if kind == "array":
        if isinstance(spec.get("items"), Mapping) and "enum" in spec["items"]:
            return given
        lines = "\n".join(given).splitlines()
        return [line.strip() for line in lines if line.strip()]
    if not given:
        return None
    text = given[-1]
    if kind in ("integer", "number"):
        try:
            return int(text) if kind == "integer" else float(text)
        except ValueError:
            return text
    if kind == "object":
        try:
            return json.loads(text)
        except ValueError:
            return text
    return text

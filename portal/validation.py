"""JSON schemas as field problems, for every area that checks input against a schema:
schemas written with a ``title`` that says, in words, what a field expects, and each error
a schema finds turned into a :class:`FieldProblem` named by its field (``spec.targets[2]``),
with how problems are ordered and values quoted."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import fastjsonschema
from jsonschema.exceptions import ValidationError
from jsonschema.protocols import Validator

from portal.errors import FieldProblem

_PLACEHOLDERS = ("$text", "$json", "$yaml")

STRING = {"type": "string", "title": "a string"}


def text_schema(title: str = "a non-empty string") -> dict[str, Any]:
    return {"type": "string", "minLength": 1, "title": title}


def object_schema(required: Iterable[str] = (), /, **properties: dict[str, Any]) -> dict[str, Any]:
    return {"type": "object", "required": list(required), "properties": properties}


def schema_problems(validator: Validator, instance: Any, prefix: str = "") -> list[FieldProblem]:
    if _quick_check(validator)(instance):
        return []
    problems = [
        problem
        for error in validator.iter_errors(instance)
        # An unresolved placeholder ({$text: url}) stands for a value read later, as in Backstage.
        if not _is_placeholder(error.instance)
        for problem in _problems_from(error, prefix)
    ]
    # One error per missing dependency, each told whole: say each problem once.
    return sorted(dict.fromkeys(problems), key=field_order)


# -- The quick check -------------------------------------------------------------------------
# jsonschema explains each error well but takes a quarter of a large ingestion's time; a
# schema compiled by fastjsonschema says "valid" ten times faster. It decides alone only
# when it says "valid" and the schema uses nothing but keywords both read the same way;
# anything it refuses is checked again by jsonschema, which says why (or accepts it: a
# "format" fastjsonschema checks and jsonschema does not, an integer written 1.0).

_SCHEMA_KEYWORDS = frozenset(
    ("properties", "patternProperties", "additionalProperties", "items", "not", "propertyNames")
)
_SCHEMA_LISTS = frozenset(("anyOf", "oneOf", "allOf"))
_VALUE_KEYWORDS = frozenset(("enum", "const", "examples", "default", "required"))
_PLAIN_KEYWORDS = frozenset(
    (
        "$schema", "$id", "title", "description", "type", "minLength", "maxLength", "pattern",
        "minItems", "maxItems", "uniqueItems", "minimum", "maximum", "multipleOf",
        "minProperties", "maxProperties", "format",
    )
)  # fmt: skip
_quick_checks: dict[int, tuple[Validator, Callable[[Any], bool]]] = {}


def _never(_instance: Any) -> bool:
    return False


def _quick_check(validator: Validator) -> Callable[[Any], bool]:
    """The compiled check for ``validator``'s schema, or one that never says valid."""
    known = _quick_checks.get(id(validator))
    if known is not None and known[0] is validator:
        return known[1]
    schema = validator.schema
    check: Callable[[Any], bool] = _never
    if isinstance(schema, Mapping) and _is_plain(schema):
        check = _compiled({k: v for k, v in schema.items() if k != "$schema"})
    _quick_checks[id(validator)] = (validator, check)
    return check


def _compiled(schema: Mapping[str, Any]) -> Callable[[Any], bool]:
    compiled = fastjsonschema.compile(dict(schema))

    def check(instance: Any) -> bool:
        try:
            compiled(instance)
        except fastjsonschema.JsonSchemaException:
            return False
        return True

    return check


def _is_plain(schema: Any) -> bool:
    """Only keywords that draft 7 and 2020-12 read the same way, all the way down."""
    if isinstance(schema, bool):
        return True
    if not isinstance(schema, Mapping):
        return False
    for keyword, value in schema.items():
        if keyword in _PLAIN_KEYWORDS or keyword in _VALUE_KEYWORDS:
            continue
        if keyword in ("properties", "patternProperties"):
            if not (isinstance(value, Mapping) and all(map(_is_plain, value.values()))):
                return False
        elif keyword in _SCHEMA_KEYWORDS:
            if not _is_plain(value):  # "items" as a list (a tuple) is not plain
                return False
        elif keyword in _SCHEMA_LISTS:
            if not (isinstance(value, list) and all(map(_is_plain, value))):
                return False
        else:
            return False
    return True


def _problems_from(error: ValidationError, prefix: str) -> list[FieldProblem]:
    where = join_field(prefix, _path(error.absolute_path))
    schema: Mapping[str, Any] = error.schema if isinstance(error.schema, Mapping) else {}
    value = error.instance
    if error.validator == "required" and isinstance(value, Mapping):
        properties = schema.get("properties", {})
        return [
            FieldProblem(join_field(where, name), "missing", _expected(properties.get(name, {})))
            for name in schema.get("required", ())
            if name not in value
        ]
    dependencies = error.validator_value
    if (
        error.validator == "dependentRequired"
        and isinstance(dependencies, Mapping)
        and isinstance(value, Mapping)
    ):
        return [
            FieldProblem(join_field(where, needed), "missing", f"a value, since {given} has one")
            for given, needs in dependencies.items()
            if given in value
            for needed in needs
            if needed not in value
        ]
    if error.validator in ("oneOf", "anyOf") and error.context:
        return [
            problem for inner in _closest_branch(error) for problem in _problems_from(inner, prefix)
        ]
    if error.validator == "type":
        message = f"{show(value)} is not {_expected({'type': schema.get('type')})}"
    elif error.validator == "enum":
        message = f"{show(value)} is not one of {', '.join(map(str, schema['enum']))}"
    elif error.validator == "const":
        message = f"{show(value)} is not {show(schema['const'])}"
    elif error.validator == "minLength" and value == "":
        message = "empty"
    else:
        message = error.message
    return [FieldProblem(where or "entity", message, _expected(schema))]


def _closest_branch(error: ValidationError) -> list[ValidationError]:
    """The errors of the ``oneOf``/``anyOf`` branch the value came closest to: one whose
    ``const`` or ``enum`` it matches (the branch it chose), else the one with fewest errors."""
    branches: dict[Any, list[ValidationError]] = {}
    for inner in error.context or []:
        branches.setdefault(inner.relative_schema_path[0], []).append(inner)
    return min(
        branches.values(),
        key=lambda errors: (any(e.validator in ("const", "enum") for e in errors), len(errors)),
    )


_TYPE_TEXT = {"string": "a string", "array": "a list", "object": "an object", "null": "null"}
_TYPE_TEXT |= {"boolean": "true or false", "integer": "a whole number", "number": "a number"}


def _expected(schema: Mapping[str, Any]) -> str:
    """What ``schema`` expects, in words: its title, or its type with its first example."""
    if schema.get("title"):
        return str(schema["title"])
    if "enum" in schema:
        return "one of " + ", ".join(str(value) for value in schema["enum"])
    if "const" in schema:
        return show(schema["const"])
    types = schema.get("type")
    names = [types] if isinstance(types, str) else list(types or [])
    text = " or ".join(_TYPE_TEXT.get(name, name) for name in names) or "a value"
    items = schema.get("items")
    if names == ["string"] and schema.get("minLength", 0) >= 1:
        text = "a non-empty string"
    elif names == ["array"] and isinstance(items, Mapping):
        text = f"a list, each item {_expected(items)}"
    elif names == ["object"] and schema.get("required"):
        text = f"an object with {', '.join(schema['required'])}"
    examples = schema.get("examples")
    if isinstance(examples, list) and examples:
        example = examples[0]
        text += f", e.g. {example if isinstance(example, str) else show(example)}"
    return text


def _is_placeholder(value: object) -> bool:
    return (
        isinstance(value, Mapping)
        and len(value) == 1
        and next(iter(value)) in _PLACEHOLDERS
        and isinstance(next(iter(value.values())), str)
    )


def _path(parts: Iterable[str | int]) -> str:
    text = ""
    for part in parts:
        text = f"{text}[{part}]" if isinstance(part, int) else join_field(text, part)
    return text


def field_order(problem: FieldProblem) -> list[tuple[int, str]]:
    """Problems in field order, list items by number: ``tags[2]`` before ``tags[10]``."""
    parts = re.split(r"[.\[\]]+", problem.field)
    return [(0, part.zfill(9)) if part.isdigit() else (1, part) for part in parts]


def join_field(prefix: str, name: str) -> str:
    return f"{prefix}.{name}" if prefix and name else prefix or name


def names_any(problems: list[FieldProblem], fields: tuple[str, ...]) -> bool:
    return any(problem.field in fields for problem in problems)


def show(value: object) -> str:
    """``value`` as JSON, cut short: how a bad value is quoted in a message."""
    text = json.dumps(value, default=str, ensure_ascii=False)
    return text if len(text) <= 60 else text[:57] + "..."

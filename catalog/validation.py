"""Entity validation as Backstage does it: the envelope, the metadata and each kind's spec.

Pure checks, no I/O. :func:`validate_entity` reports every problem at once, each named by
its field (``metadata.name``, ``spec.targets[2]``) with what was expected. The metadata
rules are Backstage's field-format policy. Each kind's spec is checked by a JSON schema:
for Backstage's kinds, the ones written below from Backstage's published rules; for
Paved's ML kinds (Model, Dataset), the files in :data:`SCHEMA_DIR`, which the API serves.
Refs in a spec are checked by :func:`catalog.relations.relations_of`, the code that later
reads them. Plugins add kinds with :func:`register_kind`.
See https://backstage.io/docs/features/software-catalog/descriptor-format
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Callable, Iterable, Mapping
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError
from jsonschema.protocols import Validator
from jsonschema.validators import validator_for

from catalog.refs import DEFAULT_NAMESPACE, ref_form
from catalog.relations import relations_of
from portal.errors import ConfigurationError, FieldProblem, InvalidInput, NotFound

KindChecker = Callable[[Mapping[str, Any]], list[FieldProblem]]
"""Checks a whole entity of one kind; returns its problems, fields named from the root."""

SCHEMA_DIR = Path(__file__).parent / "schemas"
PAVED_API_VERSION = "paved.dev/v1alpha1"
PAVED_KINDS = ("Model", "Dataset")
BACKSTAGE_API_VERSIONS = ("backstage.io/v1alpha1", "backstage.io/v1beta1")
TEMPLATE_API_VERSION = "scaffolder.backstage.io/v1beta3"
ROOT_FIELDS = ("apiVersion", "kind", "metadata", "spec", "relations", "status")

_NAME = re.compile(r"[A-Za-z0-9]([A-Za-z0-9._-]*[A-Za-z0-9])?")
_DNS_LABEL = re.compile(r"[a-z0-9]+(-[a-z0-9]+)*")
_TAG = re.compile(r"[a-z0-9:+#]+(-[a-z0-9:+#]+)*")
_KIND = re.compile(r"[A-Za-z][A-Za-z0-9]*")
_VERSION = re.compile(r"[A-Za-z0-9]+")
_PLACEHOLDERS = ("$text", "$json", "$yaml")

NAME_FORM = (
    "1-63 letters, digits, -, _ or ., starting and ending with a letter or digit, e.g. fraud-scorer"
)
NAMESPACE_FORM = "1-63 lower-case letters and digits, separated by single dashes, e.g. default"
TAG_FORM = "1-63 lower-case letters, digits, +, # or :, separated by single dashes, e.g. python"
LABEL_KEY_FORM = f"an optional DNS prefix up to 253 characters and /, then {NAME_FORM}"
LABEL_VALUE_FORM = f"empty, or {NAME_FORM}"
URL_FORM = "an absolute URL, e.g. https://grafana.example.com/d/fraud"

# The kinds the catalog accepts: (apiVersion, kind) -> checker. Plugins add theirs.
KINDS: dict[tuple[str, str], KindChecker] = {}


def register_kind(api_version: str, kind: str, checker: KindChecker) -> None:
    """Accept entities of ``kind`` under ``api_version``, checked by ``checker``."""
    if (api_version, kind) in KINDS:
        raise ConfigurationError(f"kind {kind} of {api_version} is already registered")
    KINDS[(api_version, kind)] = checker


def unregister_kind(api_version: str, kind: str) -> None:
    KINDS.pop((api_version, kind), None)


def known_kinds() -> list[str]:
    return sorted({kind for _, kind in KINDS})


def validate_entity(entity: object, *, field_prefix: str = "") -> dict[str, Any]:
    """``entity`` checked as Backstage checks it, as a copy with ``metadata.namespace`` set.

    Raises one ``InvalidInput`` listing every problem, the first found per field.
    ``field_prefix`` (e.g. ``"entity"``) is put before each field, joined by a dot.
    """
    if not isinstance(entity, Mapping):
        problem = FieldProblem(field_prefix or "entity", f"{_show(entity)} is not an object")
        raise InvalidInput(f"{problem.field}: {problem.message}", [problem])
    problems = _envelope_problems(entity) + _metadata_problems(entity.get("metadata"))
    checker = _kind_checker(entity, problems)
    if checker is not None:
        problems += checker(entity)
        if not _names_any(problems, ("metadata", "metadata.name", "metadata.namespace")):
            problems += _ref_problems(entity)
    problems = _first_per_field(problems)
    if problems:
        problems = [
            FieldProblem(_join(field_prefix, p.field), p.message, p.expected) for p in problems
        ]
        raise InvalidInput(_summary(entity, problems), problems)
    normalised = dict(entity)
    normalised["metadata"] = metadata = dict(entity["metadata"])
    metadata.setdefault("namespace", DEFAULT_NAMESPACE)
    return normalised


def kind_schema(kind: str) -> dict[str, Any]:
    """The JSON schema of one of Paved's own kinds (Model, Dataset), to serve or to read."""
    for name in PAVED_KINDS:
        if name.lower() == kind.lower():
            return copy.deepcopy(_schema_file(name))
    raise NotFound(f"no JSON schema for kind {kind!r}; Paved's kinds: {', '.join(PAVED_KINDS)}")


def json_schema_checker(schema: Mapping[str, Any]) -> KindChecker:
    """A checker from a JSON schema of the whole entity (draft-07 or 2020-12)."""
    validator_class = validator_for(schema)
    validator_class.check_schema(dict(schema))
    validator = validator_class(dict(schema))
    return lambda entity: _schema_problems(validator, entity)


# --- envelope and metadata ------------------------------------------------------------


def _envelope_problems(entity: Mapping[str, Any]) -> list[FieldProblem]:
    problems = [
        FieldProblem(name, "not a field of an entity", ", ".join(ROOT_FIELDS))
        for name in entity
        if name not in ROOT_FIELDS
    ]
    api_version = entity.get("apiVersion")
    if not (isinstance(api_version, str) and _is_prefixed(api_version, _is_version)):
        message = "missing" if api_version is None else f"{_show(api_version)} is not valid"
        expected = "group/version, e.g. backstage.io/v1alpha1"
        problems.append(FieldProblem("apiVersion", message, expected))
    kind = entity.get("kind")
    if not (isinstance(kind, str) and len(kind) <= 63 and _KIND.fullmatch(kind)):
        message = "missing" if kind is None else f"{_show(kind)} is not a kind"
        problems.append(FieldProblem("kind", message, f"one of {', '.join(known_kinds())}"))
    return problems


def _metadata_problems(metadata: object) -> list[FieldProblem]:
    if not isinstance(metadata, Mapping):
        message = "missing" if metadata is None else f"{_show(metadata)} is not an object"
        return [FieldProblem("metadata", message, "an object with at least a name")]
    problems = _schema_problems(_METADATA, metadata, "metadata")
    problems += _format("metadata.name", metadata.get("name"), _is_name, "name", NAME_FORM)
    problems += _format(
        "metadata.namespace", metadata.get("namespace"), _is_dns_label, "namespace", NAMESPACE_FORM
    )
    for field_name, is_valid_value in (("labels", _is_label_value), ("annotations", None)):
        pairs = metadata.get(field_name)
        for key, value in pairs.items() if isinstance(pairs, Mapping) else ():
            where = f"metadata.{field_name}.{key}"
            if not _is_prefixed(str(key), _is_name):
                problems.append(
                    FieldProblem(where, f"{_show(key)} is not a valid key", LABEL_KEY_FORM)
                )
            elif is_valid_value is not None:
                problems += _format(where, value, is_valid_value, "label value", LABEL_VALUE_FORM)
    tags = metadata.get("tags")
    for i, tag in enumerate(tags if isinstance(tags, list) else ()):
        problems += _format(f"metadata.tags[{i}]", tag, _is_tag, "tag", TAG_FORM)
    links = metadata.get("links")
    for i, link in enumerate(links if isinstance(links, list) else ()):
        url = link.get("url") if isinstance(link, Mapping) else None
        problems += _format(f"metadata.links[{i}].url", url, _is_url, "URL", URL_FORM)
    return sorted(problems, key=_field_order)


def _format(
    field_name: str, value: object, is_valid: Callable[[str], bool], what: str, expected: str
) -> list[FieldProblem]:
    """A problem when ``value`` is a string ``is_valid`` refuses (its type is checked apart)."""
    if isinstance(value, str) and not is_valid(value):
        return [FieldProblem(field_name, f"{_show(value)} is not a valid {what}", expected)]
    return []


def _is_name(value: str) -> bool:
    return len(value) <= 63 and _NAME.fullmatch(value) is not None


def _is_dns_label(value: str) -> bool:
    return len(value) <= 63 and _DNS_LABEL.fullmatch(value) is not None


def _is_tag(value: str) -> bool:
    return len(value) <= 63 and _TAG.fullmatch(value) is not None


def _is_version(value: str) -> bool:
    return len(value) <= 63 and _VERSION.fullmatch(value) is not None


def _is_label_value(value: str) -> bool:
    return value == "" or _is_name(value)


def _is_prefixed(value: str, is_valid_suffix: Callable[[str], bool]) -> bool:
    """``[prefix/]suffix`` as Kubernetes label keys are, the prefix a DNS subdomain."""
    parts = value.split("/")
    if len(parts) == 1:
        return is_valid_suffix(parts[0])
    prefix, suffix = parts if len(parts) == 2 else ("", "")
    is_subdomain = len(prefix) <= 253 and all(map(_is_dns_label, prefix.split(".")))
    return is_subdomain and is_valid_suffix(suffix)


def _is_url(value: str) -> bool:
    parts = urlsplit(value)
    if not parts.scheme or any(char.isspace() for char in value):
        return False
    return bool(parts.netloc) if parts.scheme in ("http", "https") else bool(parts.path)


# --- kinds ----------------------------------------------------------------------------


def _kind_checker(entity: Mapping[str, Any], problems: list[FieldProblem]) -> KindChecker | None:
    """The checker for the entity's apiVersion and kind; without one, a problem says why."""
    if _names_any(problems, ("apiVersion", "kind")):
        return None
    api_version, kind = entity["apiVersion"], entity["kind"]
    checker = KINDS.get((api_version, kind))
    if checker is not None:
        return checker
    versions = [version for version, known in KINDS if known == kind]
    if versions:
        message = f"{api_version} has no kind {kind}"
        problems.append(FieldProblem("apiVersion", message, " or ".join(versions)))
        return None
    same_but_case = [known for known in known_kinds() if known.lower() == kind.lower()]
    expected = (
        f"{same_but_case[0]} (kinds are case-sensitive)"
        if same_but_case
        else f"one of {', '.join(known_kinds())}"
    )
    problems.append(FieldProblem("kind", f"{kind} is not a kind the catalog knows", expected))
    return None


def _ref_problems(entity: Mapping[str, Any]) -> list[FieldProblem]:
    try:
        relations_of(entity)
    except InvalidInput as error:
        return list(error.errors)
    return []


def _spec_checker(
    schema: dict[str, Any], by_type: Mapping[str, dict[str, Any]] | None = None
) -> KindChecker:
    """A checker of the spec by ``schema``, or by ``by_type``'s schema for the spec's type."""
    validator = Draft202012Validator(schema)
    validators = {name: Draft202012Validator(typed) for name, typed in (by_type or {}).items()}

    def check(entity: Mapping[str, Any]) -> list[FieldProblem]:
        if "spec" not in entity:
            return [FieldProblem("spec", "missing", "an object")]
        spec = entity["spec"]
        spec_type = spec.get("type") if isinstance(spec, Mapping) else None
        chosen = validators.get(spec_type, validator) if isinstance(spec_type, str) else validator
        return _schema_problems(chosen, spec, "spec")

    return check


def _location_problems(entity: Mapping[str, Any]) -> list[FieldProblem]:
    problems = _LOCATION_SPEC(entity)
    spec = entity.get("spec")
    if isinstance(spec, Mapping) and spec.get("target") is None and spec.get("targets") is None:
        expected = "spec.target (one file or URL) or spec.targets (a list of them)"
        problems.append(FieldProblem("spec.target", "missing", expected))
    return problems


# Schemas of Backstage's kinds, written for Paved from Backstage's published rules. A
# ``title`` here is what a problem names as expected.


def _text(title: str = "a non-empty string") -> dict[str, Any]:
    return {"type": "string", "minLength": 1, "title": title}


def _texts(title: str = "a list of non-empty strings") -> dict[str, Any]:
    return {"type": "array", "items": _text(), "title": title}


def _ref(default_kind: str | None) -> dict[str, Any]:
    return _text(f"an entity ref: {ref_form(default_kind)}")


def _refs(default_kind: str | None) -> dict[str, Any]:
    title = f"a list of entity refs: {ref_form(default_kind)}"
    return {"type": "array", "items": _ref(default_kind), "title": title}


def _object(required: Iterable[str] = (), /, **properties: dict[str, Any]) -> dict[str, Any]:
    return {"type": "object", "required": list(required), "properties": properties}


_STRING = {"type": "string", "title": "a string"}
_QUOTED = "a string (in YAML, quote numbers and booleans: '3', 'true')"


def _string_map(value_title: str) -> dict[str, Any]:
    value = {"type": "string", "title": value_title}
    return {"type": "object", "additionalProperties": value, "title": "key: value pairs"}


_METADATA = Draft202012Validator(
    _object(
        ("name",),
        name={"type": "string", "title": NAME_FORM},
        namespace={"type": "string", "title": NAMESPACE_FORM},
        title=_text(),
        description=_STRING,
        labels=_string_map(f"{LABEL_VALUE_FORM} ({_QUOTED})"),
        annotations=_string_map(_QUOTED),
        tags={"type": "array", "items": {"type": "string", "title": TAG_FORM}},
        links={
            "type": "array",
            "items": _object(
                ("url",), url=_text(URL_FORM), title=_text(), icon=_text(), type=_text()
            ),
        },
    )
)
_PROFILE = _object(displayName=_text(), email=_text(), picture=_text())


def _owned(type_example: str) -> dict[str, dict[str, Any]]:
    """The fields of a kind that has a type, a lifecycle, an owner and a system."""
    return {
        "type": _text(f"a non-empty string, e.g. {type_example}"),
        "lifecycle": _text("a non-empty string, e.g. production"),
        "owner": _ref("Group"),
        "system": _ref("System"),
    }


_API = _object(
    ("type", "lifecycle", "owner", "definition"),
    **_owned("openapi"),
    definition=_text("the API's definition, e.g. an OpenAPI document"),
)
_MCP_SERVER_API = _object(
    ("type", "lifecycle", "owner", "remotes"),
    **_owned("mcp-server"),
    remotes={"type": "array", "items": _object(("type", "url"), type=_text(), url=_text())},
)
_COMPONENT = _object(
    ("type", "lifecycle", "owner"),
    **_owned("service"),
    subcomponentOf=_ref("Component"),
    providesApis=_refs("API"),
    consumesApis=_refs("API"),
    dependsOn=_refs(None),
    dependencyOf=_refs(None),
)
_RESOURCE = _object(
    ("type", "owner"), **_owned("database"), dependsOn=_refs(None), dependencyOf=_refs(None)
)
_SYSTEM = _object(("owner",), owner=_ref("Group"), domain=_ref("Domain"), type=_text())
_DOMAIN = _object(("owner",), owner=_ref("Group"), subdomainOf=_ref("Domain"), type=_text())
_GROUP = _object(
    ("type", "children"),
    type=_text("a non-empty string, e.g. team"),
    profile=_PROFILE,
    parent=_ref("Group"),
    children=_refs("Group"),
    members=_refs("User"),
)
_USER = _object(("memberOf",), profile=_PROFILE, memberOf=_refs("Group"))
_LOCATION = _object(
    type=_text("a location type, e.g. url or file"),
    target=_text(),
    targets=_texts(),
    presence={"enum": ["required", "optional"]},
)
_TEMPLATE = _object(
    ("type", "steps"),
    type=_text(),
    owner=_ref("Group"),
    lifecycle=_text(),
    parameters={
        "type": ["object", "array"],
        "items": {"type": "object"},
        "title": "an object (the form's JSON schema) or a list of them, one per page",
    },
    steps={
        "type": "array",
        "title": "a list of steps, each with an action",
        "items": _object(
            ("action",),
            id=_STRING,
            name=_STRING,
            action=_text("an action id, e.g. fetch:template"),
            input={"type": "object"},
            **{"if": {"type": ["string", "boolean"], "title": "a condition or true or false"}},
        ),
    },
    output={
        **_object(
            links={
                "type": "array",
                "items": _object(url=_text(), entityRef=_text(), title=_text(), icon=_text()),
            },
            text={"type": "array", "items": _object(title=_text(), content=_STRING)},
        ),
        "additionalProperties": _STRING,
    },
    secrets={"type": "object"},
    presentation={"type": "object"},
)
# Backstage's AiResource types (skill, rule, plugin, marketplace) add fields of their own;
# those are not checked here, only what every AiResource has.
_AI_RESOURCE = _object(("type", "lifecycle", "owner"), **_owned("skill"))


# --- JSON schema problems as field problems --------------------------------------------


@cache
def _schema_file(kind: str) -> dict[str, Any]:
    schema: dict[str, Any] = json.loads((SCHEMA_DIR / f"{kind}.v1alpha1.schema.json").read_text())
    return schema


@cache
def _schema_file_checker(kind: str) -> KindChecker:
    return json_schema_checker(_schema_file(kind))


def _paved_kind(kind: str) -> KindChecker:
    """The checker of one of Paved's kinds; its schema file is read at the first check."""
    return lambda entity: _schema_file_checker(kind)(entity)


def _schema_problems(validator: Validator, instance: Any, prefix: str = "") -> list[FieldProblem]:
    problems = [
        problem
        for error in validator.iter_errors(instance)
        # An unresolved placeholder ({$text: url}) stands for a value read later, as in Backstage.
        if not _is_placeholder(error.instance)
        for problem in _problems_from(error, prefix)
    ]
    return sorted(problems, key=_field_order)


def _problems_from(error: ValidationError, prefix: str) -> list[FieldProblem]:
    where = _join(prefix, _path(error.absolute_path))
    schema: Mapping[str, Any] = error.schema if isinstance(error.schema, Mapping) else {}
    value = error.instance
    if error.validator == "required" and isinstance(value, Mapping):
        properties = schema.get("properties", {})
        return [
            FieldProblem(_join(where, name), "missing", _expected(properties.get(name, {})))
            for name in schema.get("required", ())
            if name not in value
        ]
    if error.validator == "type":
        message = f"{_show(value)} is not {_expected({'type': schema.get('type')})}"
    elif error.validator == "enum":
        message = f"{_show(value)} is not one of {', '.join(map(str, schema['enum']))}"
    elif error.validator == "const":
        message = f"{_show(value)} is not {_show(schema['const'])}"
    elif error.validator == "minLength" and value == "":
        message = "empty"
    else:
        message = error.message
    return [FieldProblem(where or "entity", message, _expected(schema))]


_TYPE_TEXT = {"string": "a string", "array": "a list", "object": "an object", "null": "null"}
_TYPE_TEXT |= {"boolean": "true or false", "integer": "a whole number", "number": "a number"}


def _expected(schema: Mapping[str, Any]) -> str:
    """What ``schema`` expects, in words: its title, or its type with its first example."""
    if schema.get("title"):
        return str(schema["title"])
    if "enum" in schema:
        return "one of " + ", ".join(str(value) for value in schema["enum"])
    if "const" in schema:
        return _show(schema["const"])
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
        text += f", e.g. {example if isinstance(example, str) else _show(example)}"
    return text


# --- small helpers ---------------------------------------------------------------------


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
        text = f"{text}[{part}]" if isinstance(part, int) else _join(text, part)
    return text


def _field_order(problem: FieldProblem) -> list[tuple[int, str]]:
    """Problems in field order, list items by number: ``tags[2]`` before ``tags[10]``."""
    parts = re.split(r"[.\[\]]+", problem.field)
    return [(0, part.zfill(9)) if part.isdigit() else (1, part) for part in parts]


def _join(prefix: str, name: str) -> str:
    return f"{prefix}.{name}" if prefix and name else prefix or name


def _names_any(problems: list[FieldProblem], fields: tuple[str, ...]) -> bool:
    return any(problem.field in fields for problem in problems)


def _first_per_field(problems: list[FieldProblem]) -> list[FieldProblem]:
    """One problem per field, the first found: later checks often see the same fault."""
    first: dict[str, FieldProblem] = {}
    for problem in problems:
        first.setdefault(problem.field, problem)
    return list(first.values())


def _summary(entity: Mapping[str, Any], problems: list[FieldProblem]) -> str:
    metadata = entity.get("metadata")
    name = metadata.get("name") if isinstance(metadata, Mapping) else None
    kind = entity.get("kind")
    count = "1 problem" if len(problems) == 1 else f"{len(problems)} problems"
    listed = "; ".join(f"{p.field}: {p.message}" for p in problems)
    return f"kind {_or_unknown(kind)}, name {_or_unknown(name)}: {count}: {listed}"


def _or_unknown(value: object) -> str:
    return value if isinstance(value, str) and value else "?"


def _show(value: object) -> str:
    """``value`` as JSON, cut short: how a bad value is quoted in a message."""
    text = json.dumps(value, default=str, ensure_ascii=False)
    return text if len(text) <= 60 else text[:57] + "..."


_LOCATION_SPEC = _spec_checker(_LOCATION)
for _version in BACKSTAGE_API_VERSIONS:
    register_kind(_version, "Component", _spec_checker(_COMPONENT))
    register_kind(_version, "API", _spec_checker(_API, {"mcp-server": _MCP_SERVER_API}))
    register_kind(_version, "Resource", _spec_checker(_RESOURCE))
    register_kind(_version, "System", _spec_checker(_SYSTEM))
    register_kind(_version, "Domain", _spec_checker(_DOMAIN))
    register_kind(_version, "Group", _spec_checker(_GROUP))
    register_kind(_version, "User", _spec_checker(_USER))
    register_kind(_version, "Location", _location_problems)
register_kind(BACKSTAGE_API_VERSIONS[0], "AiResource", _spec_checker(_AI_RESOURCE))
register_kind(TEMPLATE_API_VERSION, "Template", _spec_checker(_TEMPLATE))
for _kind in PAVED_KINDS:
    register_kind(PAVED_API_VERSION, _kind, _paved_kind(_kind))

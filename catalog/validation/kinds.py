"""The kinds the catalog accepts, and Backstage's kinds among them.

:data:`KINDS` maps ``(apiVersion, kind)`` to the checker of that kind's spec; plugins add
theirs with :func:`register_kind`. Backstage's kinds are checked by JSON schemas written
here from Backstage's published rules.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from jsonschema import Draft202012Validator

from catalog.refs import ref_form
from portal.errors import ConfigurationError, FieldProblem
from portal.validation import (
    STRING,
    names_any,
    object_schema,
    schema_problems,
    text_schema,
)

KindChecker = Callable[[Mapping[str, Any]], list[FieldProblem]]
"""Checks a whole entity of one kind; returns its problems, fields named from the root."""

BACKSTAGE_API_VERSIONS = ("backstage.io/v1alpha1", "backstage.io/v1beta1")
TEMPLATE_API_VERSION = "scaffolder.backstage.io/v1beta3"

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


def kind_checker(entity: Mapping[str, Any], problems: list[FieldProblem]) -> KindChecker | None:
    """The checker for the entity's apiVersion and kind; without one, a problem says why."""
    if names_any(problems, ("apiVersion", "kind")):
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
        return schema_problems(chosen, spec, "spec")

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


def _texts(title: str = "a list of non-empty strings") -> dict[str, Any]:
    return {"type": "array", "items": text_schema(), "title": title}


def _ref(default_kind: str | None) -> dict[str, Any]:
    return text_schema(f"an entity ref: {ref_form(default_kind)}")


def _refs(default_kind: str | None) -> dict[str, Any]:
    title = f"a list of entity refs: {ref_form(default_kind)}"
    return {"type": "array", "items": _ref(default_kind), "title": title}


_PROFILE = object_schema(displayName=text_schema(), email=text_schema(), picture=text_schema())


def _owned(type_example: str) -> dict[str, dict[str, Any]]:
    """The fields of a kind that has a type, a lifecycle, an owner and a system."""
    return {
        "type": text_schema(f"a non-empty string, e.g. {type_example}"),
        "lifecycle": text_schema("a non-empty string, e.g. production"),
        "owner": _ref("Group"),
        "system": _ref("System"),
    }


_API = object_schema(
    ("type", "lifecycle", "owner", "definition"),
    **_owned("openapi"),
    definition=text_schema("the API's definition, e.g. an OpenAPI document"),
)
_MCP_SERVER_API = object_schema(
    ("type", "lifecycle", "owner", "remotes"),
    **_owned("mcp-server"),
    remotes={
        "type": "array",
        "items": object_schema(("type", "url"), type=text_schema(), url=text_schema()),
    },
)
_COMPONENT = object_schema(
    ("type", "lifecycle", "owner"),
    **_owned("service"),
    subcomponentOf=_ref("Component"),
    providesApis=_refs("API"),
    consumesApis=_refs("API"),
    dependsOn=_refs(None),
    dependencyOf=_refs(None),
)
_RESOURCE = object_schema(
    ("type", "owner"), **_owned("database"), dependsOn=_refs(None), dependencyOf=_refs(None)
)
_SYSTEM = object_schema(("owner",), owner=_ref("Group"), domain=_ref("Domain"), type=text_schema())
_DOMAIN = object_schema(
    ("owner",), owner=_ref("Group"), subdomainOf=_ref("Domain"), type=text_schema()
)
_GROUP = object_schema(
    ("type", "children"),
    type=text_schema("a non-empty string, e.g. team"),
    profile=_PROFILE,
    parent=_ref("Group"),
    children=_refs("Group"),
    members=_refs("User"),
)
_USER = object_schema(("memberOf",), profile=_PROFILE, memberOf=_refs("Group"))
_LOCATION = object_schema(
    type=text_schema("a location type, e.g. url or file"),
    target=text_schema(),
    targets=_texts(),
    presence={"enum": ["required", "optional"]},
)
_TEMPLATE = object_schema(
    ("type", "steps"),
    type=text_schema(),
    owner=_ref("Group"),
    lifecycle=text_schema(),
    parameters={
        "type": ["object", "array"],
        "items": {"type": "object"},
        "title": "an object (the form's JSON schema) or a list of them, one per page",
    },
    steps={
        "type": "array",
        "title": "a list of steps, each with an action",
        "items": object_schema(
            ("action",),
            id=STRING,
            name=STRING,
            action=text_schema("an action id, e.g. fetch:template"),
            input={"type": "object"},
            **{"if": {"type": ["string", "boolean"], "title": "a condition or true or false"}},
        ),
    },
    output={
        **object_schema(
            links={
                "type": "array",
                "items": object_schema(
                    url=text_schema(),
                    entityRef=text_schema(),
                    title=text_schema(),
                    icon=text_schema(),
                ),
            },
            text={"type": "array", "items": object_schema(title=text_schema(), content=STRING)},
        ),
        "additionalProperties": STRING,
    },
    secrets={"type": "object"},
    presentation={"type": "object"},
)
# Backstage's AiResource types (skill, rule, plugin, marketplace) add fields of their own;
# those are not checked here, only what every AiResource has.
_AI_RESOURCE = object_schema(("type", "lifecycle", "owner"), **_owned("skill"))


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

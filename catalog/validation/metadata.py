"""The envelope and metadata of an entity, by Backstage's field-format policy: the root
fields, ``apiVersion`` and ``kind``, and ``metadata``'s name, namespace, labels,
annotations, tags and links."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlsplit

from jsonschema import Draft202012Validator

from catalog.validation.kinds import known_kinds
from portal.errors import FieldProblem
from portal.validation import (
    STRING,
    field_order,
    object_schema,
    schema_problems,
    show,
    text_schema,
)

ROOT_FIELDS = ("apiVersion", "kind", "metadata", "spec", "relations", "status")

_NAME = re.compile(r"[A-Za-z0-9]([A-Za-z0-9._-]*[A-Za-z0-9])?")
_DNS_LABEL = re.compile(r"[a-z0-9]+(-[a-z0-9]+)*")
_TAG = re.compile(r"[a-z0-9:+#]+(-[a-z0-9:+#]+)*")
_KIND = re.compile(r"[A-Za-z][A-Za-z0-9]*")
_VERSION = re.compile(r"[A-Za-z0-9]+")

NAME_FORM = (
    "1-63 letters, digits, -, _ or ., starting and ending with a letter or digit, e.g. fraud-scorer"
)
NAMESPACE_FORM = "1-63 lower-case letters and digits, separated by single dashes, e.g. default"
TAG_FORM = "1-63 lower-case letters, digits, +, # or :, separated by single dashes, e.g. python"
LABEL_KEY_FORM = f"an optional DNS prefix up to 253 characters and /, then {NAME_FORM}"
LABEL_VALUE_FORM = f"empty, or {NAME_FORM}"
URL_FORM = "an absolute URL, e.g. https://grafana.example.com/d/fraud"


def envelope_problems(entity: Mapping[str, Any]) -> list[FieldProblem]:
    problems = [
        FieldProblem(name, "not a field of an entity", ", ".join(ROOT_FIELDS))
        for name in entity
        if name not in ROOT_FIELDS
    ]
    api_version = entity.get("apiVersion")
    if not (isinstance(api_version, str) and _is_prefixed(api_version, _is_version)):
        message = "missing" if api_version is None else f"{show(api_version)} is not valid"
        expected = "group/version, e.g. backstage.io/v1alpha1"
        problems.append(FieldProblem("apiVersion", message, expected))
    kind = entity.get("kind")
    if not (isinstance(kind, str) and len(kind) <= 63 and _KIND.fullmatch(kind)):
        message = "missing" if kind is None else f"{show(kind)} is not a kind"
        problems.append(FieldProblem("kind", message, f"one of {', '.join(known_kinds())}"))
    return problems


def metadata_problems(metadata: object) -> list[FieldProblem]:
    if not isinstance(metadata, Mapping):
        message = "missing" if metadata is None else f"{show(metadata)} is not an object"
        return [FieldProblem("metadata", message, "an object with at least a name")]
    problems = schema_problems(_METADATA, metadata, "metadata")
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
                    FieldProblem(where, f"{show(key)} is not a valid key", LABEL_KEY_FORM)
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
    return sorted(problems, key=field_order)


def _format(
    field_name: str, value: object, is_valid: Callable[[str], bool], what: str, expected: str
) -> list[FieldProblem]:
    """A problem when ``value`` is a string ``is_valid`` refuses (its type is checked apart)."""
    if isinstance(value, str) and not is_valid(value):
        return [FieldProblem(field_name, f"{show(value)} is not a valid {what}", expected)]
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


# The metadata's types; its formats are checked above. A ``title`` is what a problem names
# as expected.
_QUOTED = "a string (in YAML, quote numbers and booleans: '3', 'true')"


def _string_map(value_title: str) -> dict[str, Any]:
    value = {"type": "string", "title": value_title}
    return {"type": "object", "additionalProperties": value, "title": "key: value pairs"}


_METADATA = Draft202012Validator(
    object_schema(
        ("name",),
        name={"type": "string", "title": NAME_FORM},
        namespace={"type": "string", "title": NAMESPACE_FORM},
        title=text_schema(),
        description=STRING,
        labels=_string_map(f"{LABEL_VALUE_FORM} ({_QUOTED})"),
        annotations=_string_map(_QUOTED),
        tags={"type": "array", "items": {"type": "string", "title": TAG_FORM}},
        links={
            "type": "array",
            "items": object_schema(
                ("url",),
                url=text_schema(URL_FORM),
                title=text_schema(),
                icon=text_schema(),
                type=text_schema(),
            ),
        },
    )
)

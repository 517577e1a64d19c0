"""Entity validation as Backstage does it: the envelope, the metadata and each kind's spec.

Pure checks, no I/O. :func:`validate_entity` reports every problem at once, each named by
its field (``metadata.name``, ``spec.targets[2]``) with what was expected. The metadata
rules are Backstage's field-format policy. Each kind's spec is checked by a JSON schema:
for Backstage's kinds, the ones written from Backstage's published rules; for Paved's ML
kinds (Model, Dataset), the files in :data:`SCHEMA_DIR`, which the API serves.
Refs in a spec are checked by :func:`catalog.relations.relations_of`, the code that later
reads them. Plugins add kinds with :func:`register_kind`.
See https://backstage.io/docs/features/software-catalog/descriptor-format

``metadata.py`` checks the envelope and the metadata, ``kinds.py`` holds the registry of
kinds and Backstage's kinds, ``schemas.py`` the kinds checked by a JSON schema file, and
``problems.py`` turns a JSON schema's errors into field problems.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from catalog.refs import DEFAULT_NAMESPACE
from catalog.relations import relations_of
from catalog.validation.kinds import (
    BACKSTAGE_API_VERSIONS,
    KINDS,
    TEMPLATE_API_VERSION,
    KindChecker,
    kind_checker,
    known_kinds,
    register_kind,
    unregister_kind,
)
from catalog.validation.metadata import (
    LABEL_KEY_FORM,
    LABEL_VALUE_FORM,
    NAME_FORM,
    NAMESPACE_FORM,
    ROOT_FIELDS,
    TAG_FORM,
    URL_FORM,
    envelope_problems,
    metadata_problems,
)
from catalog.validation.schemas import (
    PAVED_API_VERSION,
    PAVED_KINDS,
    SCHEMA_DIR,
    json_schema_checker,
    kind_schema,
)
from portal.errors import FieldProblem, InvalidInput
from portal.validation import join_field, names_any, show

__all__ = [
    "BACKSTAGE_API_VERSIONS",
    "KINDS",
    "LABEL_KEY_FORM",
    "LABEL_VALUE_FORM",
    "NAMESPACE_FORM",
    "NAME_FORM",
    "PAVED_API_VERSION",
    "PAVED_KINDS",
    "ROOT_FIELDS",
    "SCHEMA_DIR",
    "TAG_FORM",
    "TEMPLATE_API_VERSION",
    "URL_FORM",
    "KindChecker",
    "json_schema_checker",
    "kind_schema",
    "known_kinds",
    "register_kind",
    "unregister_kind",
    "validate_entity",
]


def validate_entity(entity: object, *, field_prefix: str = "") -> dict[str, Any]:
    """``entity`` checked as Backstage checks it, as a copy with ``metadata.namespace`` set.

    Raises one ``InvalidInput`` listing every problem, the first found per field.
    ``field_prefix`` (e.g. ``"entity"``) is put before each field, joined by a dot.
    """
    if not isinstance(entity, Mapping):
        problem = FieldProblem(field_prefix or "entity", f"{show(entity)} is not an object")
        raise InvalidInput(f"{problem.field}: {problem.message}", [problem])
    problems = envelope_problems(entity) + metadata_problems(entity.get("metadata"))
    checker = kind_checker(entity, problems)
    if checker is not None:
        problems += checker(entity)
        if not names_any(problems, ("metadata", "metadata.name", "metadata.namespace")):
            problems += _ref_problems(entity)
    problems = _first_per_field(problems)
    if problems:
        problems = [
            FieldProblem(join_field(field_prefix, p.field), p.message, p.expected) for p in problems
        ]
        raise InvalidInput(_summary(entity, problems), problems)
    normalised = dict(entity)
    normalised["metadata"] = metadata = dict(entity["metadata"])
    metadata.setdefault("namespace", DEFAULT_NAMESPACE)
    return normalised


def _ref_problems(entity: Mapping[str, Any]) -> list[FieldProblem]:
    try:
        relations_of(entity)
    except InvalidInput as error:
        return list(error.errors)
    return []


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

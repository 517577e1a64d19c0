"""Kinds checked by a JSON schema of the whole entity: Paved's own kinds (Model, Dataset),
whose schema files in :data:`SCHEMA_DIR` the API also serves, and any kind a plugin
registers with :func:`json_schema_checker`."""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import Any

from jsonschema.validators import validator_for

from catalog.validation.kinds import KindChecker, register_kind
from portal.errors import NotFound
from portal.validation import schema_problems

# The schema files stay beside the catalog's modules: catalog/schemas/.
SCHEMA_DIR = Path(__file__).parent.parent / "schemas"
PAVED_API_VERSION = "paved.dev/v1alpha1"
PAVED_KINDS = ("Model", "Dataset")


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
    return lambda entity: schema_problems(validator, entity)


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


for _kind in PAVED_KINDS:
    register_kind(PAVED_API_VERSION, _kind, _paved_kind(_kind))

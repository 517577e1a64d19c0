"""The Paved project file, ``paved-project.yaml``: how Paved trains, serves and watches the
repository it sits at the root of. Its schema is ``project.schema.json`` beside this module."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import yaml
from jsonschema import Draft202012Validator

from portal.errors import FieldProblem, InvalidInput
from portal.validation import schema_problems

PROJECT_FILE = "paved-project.yaml"
SCHEMA_PATH = Path(__file__).with_name("project.schema.json")
API_VERSION = "paved.dev/v1alpha1"


@cache
def project_schema() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(SCHEMA_PATH.read_text())
    return loaded


@cache
def _validator() -> Draft202012Validator:
    return Draft202012Validator(project_schema())


def parse_project_file(text: str, *, where: str = PROJECT_FILE) -> dict[str, Any]:
    """The project file's settings; raises InvalidInput naming each field that is wrong
    (``paved-project.yaml: training.resources.memory``)."""
    try:
        loaded = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" at line {mark.line + 1}" if mark is not None else ""
        raise InvalidInput.for_field(where, f"not YAML{at}", "a paved-project.yaml") from None
    if not isinstance(loaded, dict):
        raise InvalidInput.for_field(where, "not a mapping", f"apiVersion: {API_VERSION} ...")
    problems = schema_problems(_validator(), loaded)
    if problems:
        named = [
            FieldProblem(f"{where}: {problem.field}", problem.message, problem.expected)
            for problem in problems
        ]
        first = named[0]
        raise InvalidInput(f"{first.field}: {first.message}", named)
    return loaded

"""Which fields a form shows as it is filled: JSON Schema's dependencies and if/then/else,
as Backstage's form (react-jsonschema-form) brings them in, and the values checked alike."""

from __future__ import annotations

from typing import Any

import yaml

from scaffolder.parameters import shown
from scaffolder.runner import check_values, fill_defaults

DEPLOY = yaml.safe_load(
    """
    title: Where it runs
    required: [target]
    properties:
      target: {type: string, enum: [local, kubernetes]}
      gpu: {type: boolean}
    dependencies:
      target:
        oneOf:
          - properties:
              target: {const: local}
          - properties:
              target: {const: kubernetes}
              namespace: {type: string, title: Namespace}
              replicas: {type: integer, default: 2}
            required: [namespace]
      gpu:
        properties:
          gpuType: {type: string, enum: [a100, t4], default: t4}
      namespace: [cluster]
    allOf:
      - if:
          properties: {target: {const: kubernetes}}
          required: [target]
        then:
          properties:
            cluster: {type: string, title: Cluster}
        else:
          properties:
            port: {type: integer, default: 8080}
    """
)
TEMPLATE = {"spec": {"parameters": [DEPLOY]}}


def fields(values: dict[str, Any]) -> list[str]:
    return list(shown(DEPLOY, values).properties)


def test_a_step_shows_its_own_fields_and_the_else_branch_before_anything_is_chosen() -> None:
    assert fields({}) == ["target", "gpu", "port"]


def test_the_oneof_branch_a_value_chooses_brings_its_fields_in() -> None:
    assert fields({"target": "local"}) == ["target", "gpu", "port"]
    chosen = shown(DEPLOY, {"target": "kubernetes"})
    assert list(chosen.properties) == ["target", "gpu", "namespace", "replicas", "cluster"]
    assert chosen.required == {"target", "namespace"}
    # The field that chose keeps its own spec (its enum), not the branch's const.
    assert chosen.properties["target"] == {"type": "string", "enum": ["local", "kubernetes"]}


def test_a_schema_dependency_shows_its_fields_once_its_field_has_a_value() -> None:
    assert "gpuType" not in fields({"gpu": None})
    assert "gpuType" in fields({"gpu": True})


def test_a_field_brought_in_can_require_more() -> None:
    assert "cluster" not in shown(DEPLOY, {"target": "kubernetes"}).required
    assert "cluster" in shown(DEPLOY, {"target": "kubernetes", "namespace": "fraud"}).required


def test_values_are_checked_against_the_branch_they_choose() -> None:
    problems = check_values(TEMPLATE, {"target": "kubernetes"})
    assert [problem.field for problem in problems] == ["namespace"]
    assert check_values(TEMPLATE, {"target": "local"}) == []
    problems = check_values(TEMPLATE, {"target": "kubernetes", "namespace": "fraud"})
    assert [problem.field for problem in problems] == ["cluster"]


def test_defaults_of_the_fields_brought_in_are_filled_in() -> None:
    filled = fill_defaults(TEMPLATE, {"target": "kubernetes", "gpu": True})
    assert filled["replicas"] == 2
    assert filled["gpuType"] == "t4"
    assert "port" not in filled
    assert fill_defaults(TEMPLATE, {"target": "local"})["port"] == 8080

"""Entities are checked as Backstage checks them, with every problem named by its field."""

import copy
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from jsonschema import Draft202012Validator

from catalog import validation
from catalog.validation import (
    SCHEMA_DIR,
    json_schema_checker,
    kind_schema,
    register_kind,
    unregister_kind,
    validate_entity,
)
from portal import validation as schema_checks
from portal.errors import ConfigurationError, FieldProblem, InvalidInput, NotFound
from portal.validation import schema_problems

from conftest import BACKSTAGE_REFERENCE

REFERENCE = BACKSTAGE_REFERENCE
INVALID_EXAMPLE = "components/invalid-component.yaml"


def _documents(folder: Path, pattern: str) -> Iterator[Any]:
    for path in sorted(folder.glob(pattern)):
        for index, document in enumerate(yaml.safe_load_all(path.read_text())):
            if document:
                name = f"{path.relative_to(folder)}#{index}"
                yield pytest.param(document, id=name)


EXAMPLES = [
    example
    for example in _documents(REFERENCE / "examples", "**/*.yaml")
    if not example.id.startswith(INVALID_EXAMPLE)
]
TEMPLATES = list(_documents(REFERENCE / "templates", "*/template.yaml"))


def component(**changes: Any) -> dict[str, Any]:
    """A valid Component; ``metadata``/``spec`` in ``changes`` are merged into its own."""
    entity: dict[str, Any] = {
        "apiVersion": "backstage.io/v1alpha1",
        "kind": "Component",
        "metadata": {"name": "scorer"},
        "spec": {"type": "service", "lifecycle": "production", "owner": "team-a"},
    }
    for part in ("metadata", "spec"):
        entity[part] |= changes.pop(part, {})
    return entity | changes


def model(**spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "paved.dev/v1alpha1",
        "kind": "Model",
        "metadata": {"name": "fraud-scorer"},
        "spec": {"type": "classification", "lifecycle": "production", "owner": "fraud"} | spec,
    }


def dataset(**spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "paved.dev/v1alpha1",
        "kind": "Dataset",
        "metadata": {"name": "transactions"},
        "spec": {
            "owner": "fraud",
            "location": "s3://northwind/transactions/",
            "format": "parquet",
            "classification": "pii",
        }
        | spec,
    }


def problems_of(entity: object, **options: Any) -> list[FieldProblem]:
    with pytest.raises(InvalidInput) as caught:
        validate_entity(entity, **options)
    return caught.value.errors


def fields_of(entity: object) -> list[str]:
    return [problem.field for problem in problems_of(entity)]


# --- Backstage's own examples and templates -------------------------------------------


def test_the_backstage_reference_examples_are_there() -> None:
    assert (REFERENCE / "examples").is_dir(), f"set PAVED_CATALOG__BACKSTAGE_REFERENCE; {REFERENCE}"
    assert len(EXAMPLES) > 50
    assert len(TEMPLATES) >= 4


@pytest.mark.parametrize("entity", EXAMPLES)
def test_every_backstage_example_entity_is_valid(entity: dict[str, Any]) -> None:
    assert validate_entity(entity)["metadata"]["name"] == entity["metadata"]["name"]


@pytest.mark.parametrize("entity", TEMPLATES)
def test_every_backstage_reference_template_is_valid(entity: dict[str, Any]) -> None:
    assert validate_entity(entity)["kind"] == "Template"


def test_backstage_s_invalid_example_names_its_bad_name_and_its_bad_tag() -> None:
    [entity] = yaml.safe_load_all((REFERENCE / "examples" / INVALID_EXAMPLE).read_text())
    with pytest.raises(InvalidInput) as caught:
        validate_entity(entity)
    assert [problem.field for problem in caught.value.errors] == [
        "metadata.name",
        "metadata.tags[1]",
    ]
    assert caught.value.detail == (
        "kind Component, name invalid component: 2 problems: "
        'metadata.name: "invalid component" is not a valid name; '
        'metadata.tags[1]: "go 1.15.3" is not a valid tag'
    )


# --- the envelope --------------------------------------------------------------------


def test_a_valid_entity_comes_back_as_a_copy_with_its_namespace_defaulted() -> None:
    entity = component()
    original = copy.deepcopy(entity)
    validated = validate_entity(entity)
    assert validated["metadata"]["namespace"] == "default"
    assert entity == original


def test_an_entity_that_is_not_an_object_is_invalid() -> None:
    assert [(p.field, p.message) for p in problems_of(["x"])] == [
        ("entity", '["x"] is not an object')
    ]


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"apiVersion": None}, "apiVersion"),
        ({"apiVersion": "backstage.io/v1/alpha"}, "apiVersion"),
        ({"kind": None}, "kind"),
        ({"kind": "Com ponent"}, "kind"),
        ({"metadata": None}, "metadata"),
        ({"metadata": "scorer"}, "metadata"),
        ({"spec": None}, "spec"),
        ({"spec": ["type"]}, "spec"),
        ({"owner": "team-a"}, "owner"),
    ],
)
def test_a_bad_envelope_names_the_field(changes: dict[str, Any], field: str) -> None:
    entity = {key: value for key, value in (component() | changes).items() if value is not None}
    assert field in fields_of(entity)


def test_an_unknown_kind_names_kind_and_lists_the_known_ones() -> None:
    [problem] = problems_of(component(kind="Pipeline"))
    assert (problem.field, problem.message) == ("kind", "Pipeline is not a kind the catalog knows")
    assert problem.expected is not None
    for kind in ("API", "Component", "Dataset", "Group", "Location", "Model", "Template", "User"):
        assert kind in problem.expected


def test_a_kind_in_the_wrong_case_is_unknown_and_says_so() -> None:
    [problem] = problems_of(component(kind="component"))
    assert problem.expected == "Component (kinds are case-sensitive)"


def test_a_known_kind_under_another_api_version_names_the_api_version() -> None:
    [problem] = problems_of(component(apiVersion="paved.dev/v1alpha1"))
    assert problem.field == "apiVersion"
    assert problem.expected == "backstage.io/v1alpha1 or backstage.io/v1beta1"


def test_backstage_kinds_are_accepted_under_v1beta1_too() -> None:
    validate_entity(component(apiVersion="backstage.io/v1beta1"))


def test_every_problem_is_reported_at_once() -> None:
    entity = component(metadata={"name": "-scorer"}, spec={"owner": None})
    del entity["spec"]["owner"]
    with pytest.raises(InvalidInput) as caught:
        validate_entity(entity)
    assert caught.value.detail == (
        'kind Component, name -scorer: 2 problems: metadata.name: "-scorer" is not a valid name; '
        "spec.owner: missing"
    )


def test_a_field_prefix_is_put_before_every_field() -> None:
    problems = problems_of(component(metadata={"name": "a b"}), field_prefix="entities[2]")
    assert [problem.field for problem in problems] == ["entities[2].metadata.name"]


# --- metadata --------------------------------------------------------------------------

GOOD_METADATA = [
    ("name", "a"),
    ("name", "Fraud_Scorer.v2-x"),
    ("name", "a" * 63),
    ("namespace", "ml-platform"),
    ("title", "Fraud scorer"),
    ("description", ""),
    ("labels", {"team": "fraud", "paved.dev/tier": "gold", "empty": ""}),
    ("labels", {"a.b-c.example.com/x_y.z": "A-b_c.d"}),
    ("annotations", {"backstage.io/techdocs-ref": "dir:.", "example.com/note": "any text at all"}),
    ("tags", ["python", "c++", "c#", "ml-ops", "lang:go"]),
    ("links", [{"url": "https://grafana.example.com", "title": "Grafana", "icon": "dashboard"}]),
    ("links", [{"url": "mailto:fraud@example.com", "type": "contact"}]),
    ("uid", "set-by-the-server"),
    ("etag", 12),
]
BAD_METADATA = [
    ("name", "", "metadata.name"),
    ("name", "-scorer", "metadata.name"),
    ("name", "scorer.", "metadata.name"),
    ("name", "fraud scorer", "metadata.name"),
    ("name", "ml/scorer", "metadata.name"),
    ("name", "a" * 64, "metadata.name"),
    ("name", 7, "metadata.name"),
    ("namespace", "ML", "metadata.namespace"),
    ("namespace", "ml_platform", "metadata.namespace"),
    ("namespace", "ml--platform", "metadata.namespace"),
    ("namespace", "", "metadata.namespace"),
    ("title", "", "metadata.title"),
    ("description", 3, "metadata.description"),
    ("labels", ["team"], "metadata.labels"),
    ("labels", {"team": "fraud team"}, "metadata.labels.team"),
    ("labels", {"team": 3}, "metadata.labels.team"),
    ("labels", {"team": "a" * 64}, "metadata.labels.team"),
    ("labels", {"Paved.dev/team": "fraud"}, "metadata.labels.Paved.dev/team"),
    ("labels", {"paved.dev/": "fraud"}, "metadata.labels.paved.dev/"),
    ("labels", {"a/b/c": "fraud"}, "metadata.labels.a/b/c"),
    ("annotations", {"example.com/flag": True}, "metadata.annotations.example.com/flag"),
    ("annotations", {"bad key": "x"}, "metadata.annotations.bad key"),
    ("tags", "python", "metadata.tags"),
    ("tags", ["python", "Python"], "metadata.tags[1]"),
    ("tags", ["ml--ops"], "metadata.tags[0]"),
    ("tags", [""], "metadata.tags[0]"),
    ("tags", [3], "metadata.tags[0]"),
    ("tags", ["a" * 64], "metadata.tags[0]"),
    ("links", {"url": "https://x"}, "metadata.links"),
    ("links", [{"title": "Grafana"}], "metadata.links[0].url"),
    ("links", [{"url": "grafana"}], "metadata.links[0].url"),
    ("links", [{"url": "https://x.example.com", "icon": ""}], "metadata.links[0].icon"),
]


@pytest.mark.parametrize(("key", "value"), GOOD_METADATA)
def test_good_metadata_is_accepted(key: str, value: object) -> None:
    validate_entity(component(metadata={key: value}))


@pytest.mark.parametrize(("key", "value", "field"), BAD_METADATA)
def test_bad_metadata_names_the_field_and_what_was_expected(
    key: str, value: object, field: str
) -> None:
    [problem] = problems_of(component(metadata={key: value}))
    assert problem.field == field
    assert problem.expected


def test_metadata_without_a_name_is_invalid() -> None:
    entity = component()
    del entity["metadata"]["name"]
    [problem] = problems_of(entity)
    assert (problem.field, problem.message) == ("metadata.name", "missing")


# --- Backstage kinds' specs ----------------------------------------------------------

REQUIRED_SPEC_FIELDS = [
    ("Component", {"type": "service", "lifecycle": "production", "owner": "a"}),
    ("API", {"type": "openapi", "lifecycle": "production", "owner": "a", "definition": "x"}),
    ("API", {"type": "mcp-server", "lifecycle": "beta", "owner": "a", "remotes": []}),
    ("Resource", {"type": "database", "owner": "a"}),
    ("System", {"owner": "a"}),
    ("Domain", {"owner": "a"}),
    ("Group", {"type": "team", "children": []}),
    ("User", {"memberOf": []}),
]


@pytest.mark.parametrize(("kind", "spec"), REQUIRED_SPEC_FIELDS)
def test_each_required_spec_field_is_named_when_missing(kind: str, spec: dict[str, Any]) -> None:
    entity = {"apiVersion": "backstage.io/v1alpha1", "kind": kind, "metadata": {"name": "x"}}
    validate_entity(entity | {"spec": spec})
    for name in spec:
        if name == "type" and kind == "API":
            continue  # the type chooses the rules; without it the plain API rules apply
        partial = {key: value for key, value in spec.items() if key != name}
        assert fields_of(entity | {"spec": partial}) == [f"spec.{name}"]


def test_a_component_without_owner_names_spec_owner_and_what_an_owner_is() -> None:
    entity = component()
    del entity["spec"]["owner"]
    [problem] = problems_of(entity)
    assert (problem.field, problem.message) == ("spec.owner", "missing")
    assert (
        problem.expected == "an entity ref: [kind:][namespace/]name, the kind Group when left out"
    )


@pytest.mark.parametrize(
    ("spec", "field"),
    [
        ({"type": ""}, "spec.type"),
        ({"lifecycle": 3}, "spec.lifecycle"),
        ({"system": ["audio"]}, "spec.system"),
        ({"providesApis": "scores-api"}, "spec.providesApis"),
        ({"consumesApis": ["scores-api", 3]}, "spec.consumesApis[1]"),
        ({"subcomponentOf": ""}, "spec.subcomponentOf"),
        ({"dependsOn": ["resource:db", "feature-store"]}, "spec.dependsOn[1]"),
        ({"owner": "group:"}, "spec.owner"),
    ],
)
def test_optional_and_ref_fields_are_checked_too(spec: dict[str, Any], field: str) -> None:
    assert fields_of(component(spec=spec)) == [field]


def test_a_ref_without_its_kind_where_none_is_implied_says_so() -> None:
    [problem] = problems_of(component(spec={"dependsOn": ["feature-store"]}))
    assert problem.message == '"feature-store" has no kind'


def test_an_api_definition_may_be_a_placeholder_read_later() -> None:
    entity: dict[str, Any] = {
        "apiVersion": "backstage.io/v1alpha1",
        "kind": "API",
        "metadata": {"name": "scores"},
        "spec": {
            "type": "openapi",
            "lifecycle": "beta",
            "owner": "a",
            "definition": {"$text": "./x"},
        },
    }
    validate_entity(entity)
    entity["spec"]["definition"] = {"text": "./x"}
    assert fields_of(entity) == ["spec.definition"]


def test_a_location_needs_a_target_or_targets() -> None:
    location = {
        "apiVersion": "backstage.io/v1alpha1",
        "kind": "Location",
        "metadata": {"name": "x"},
    }
    validate_entity(location | {"spec": {"target": "./catalog-info.yaml"}})
    validate_entity(
        location | {"spec": {"type": "url", "targets": ["https://x.example.com/a.yaml"]}}
    )
    assert fields_of(location | {"spec": {"type": "url"}}) == ["spec.target"]
    assert fields_of(location | {"spec": {"targets": ["./a.yaml", 3]}}) == ["spec.targets[1]"]
    assert fields_of(location | {"spec": {"target": "a", "presence": "maybe"}}) == ["spec.presence"]


def test_a_template_needs_a_type_and_steps_each_with_an_action() -> None:
    template = {
        "apiVersion": "scaffolder.backstage.io/v1beta3",
        "kind": "Template",
        "metadata": {"name": "python-service"},
        "spec": {"type": "service", "parameters": {"properties": {}}, "steps": [{"action": "x"}]},
    }
    validate_entity(template)
    template["spec"] = {"steps": [{"id": "fetch"}], "parameters": "name", "output": {"url": 3}}
    assert fields_of(template) == [
        "spec.output.url",
        "spec.parameters",
        "spec.steps[0].action",
        "spec.type",
    ]


# --- Paved's kinds: Model and Dataset --------------------------------------------------


def test_a_full_model_is_valid() -> None:
    validate_entity(
        model(
            system="payments",
            trainedOn=["transactions", "dataset:ml/chargebacks"],
            dependsOn=["resource:feature-store"],
            framework="xgboost",
            registeredModel="fraud-scorer",
        )
    )


def test_a_model_names_each_missing_and_mistyped_field() -> None:
    entity = model(trainedOn=["transactions", 3], framework="")
    del entity["spec"]["owner"]
    problems = problems_of(entity)
    assert [(p.field, p.message) for p in problems] == [
        ("spec.framework", "empty"),
        ("spec.owner", "missing"),
        ("spec.trainedOn[1]", "3 is not a string"),
    ]
    assert problems[2].expected == "a non-empty string, e.g. dataset:default/transactions"


def test_a_model_trained_on_a_malformed_ref_names_the_item() -> None:
    assert fields_of(model(trainedOn=["transactions", "dataset:"])) == ["spec.trainedOn[1]"]


def test_a_full_dataset_is_valid() -> None:
    fields = [
        {"name": "amount", "type": "double"},
        {"name": "email", "type": "string", "description": "buyer", "pii": True},
    ]
    validate_entity(
        dataset(schema={"fields": fields}, system="payments", lifecycle="production", type="table")
    )


def test_a_dataset_with_an_unknown_classification_lists_the_allowed_ones() -> None:
    [problem] = problems_of(dataset(classification="secret"))
    assert problem.field == "spec.classification"
    assert problem.message == '"secret" is not one of public, internal, confidential, pii'
    assert problem.expected == "one of public, internal, confidential, pii"


def test_a_dataset_names_bad_schema_fields_by_position() -> None:
    schema = {"fields": [{"name": "amount"}, {"name": "email", "type": "string", "pii": "yes"}]}
    assert fields_of(dataset(schema=schema)) == [
        "spec.schema.fields[0].type",
        "spec.schema.fields[1].pii",
    ]


def test_a_dataset_needs_an_owner_location_format_and_classification() -> None:
    entity = dataset()
    entity["spec"] = {}
    assert fields_of(entity) == [
        "spec.classification",
        "spec.format",
        "spec.location",
        "spec.owner",
    ]


@pytest.mark.parametrize("kind", ["Model", "Dataset"])
def test_paved_kinds_schemas_are_served_and_valid_json_schema(kind: str) -> None:
    schema = kind_schema(kind.lower())
    Draft202012Validator.check_schema(schema)
    assert schema == kind_schema(kind)
    assert (SCHEMA_DIR / f"{kind}.v1alpha1.schema.json").is_file()
    assert schema["properties"]["kind"] == {"const": kind}


def test_there_is_no_schema_for_an_unknown_kind() -> None:
    with pytest.raises(NotFound):
        kind_schema("Pipeline")


# --- kinds added by plugins --------------------------------------------------------------


def test_a_plugin_kind_is_accepted_while_registered() -> None:
    checker = json_schema_checker(
        {
            "$schema": "http://json-schema.org/draft-07/schema",
            "type": "object",
            "required": ["spec"],
            "properties": {"spec": {"type": "object", "required": ["query"]}},
        }
    )
    entity = {"apiVersion": "example.com/v1", "kind": "Pipeline", "metadata": {"name": "etl"}}
    register_kind("example.com/v1", "Pipeline", checker)
    try:
        validate_entity(entity | {"spec": {"query": "select 1"}})
        assert fields_of(entity | {"spec": {}}) == ["spec.query"]
        with pytest.raises(ConfigurationError):
            register_kind("example.com/v1", "Pipeline", checker)
    finally:
        unregister_kind("example.com/v1", "Pipeline")
    assert fields_of(entity | {"spec": {}}) == ["kind"]
    assert ("example.com/v1", "Pipeline") not in validation.KINDS


SCHEMA_UNDER_TEST = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "required": ["count", "name"],
    "additionalProperties": False,
    "properties": {
        "count": {"type": "integer", "minimum": 0},
        "ratio": {"type": "number"},
        "name": {"type": "string", "minLength": 1, "pattern": "^[a-z]+$"},
        "flag": {"type": "boolean"},
        "tags": {"type": "array", "items": {"type": "string"}, "uniqueItems": True},
        "kind": {"enum": ["a", "b"]},
        "either": {"anyOf": [{"type": "string"}, {"type": "null"}]},
    },
}
INSTANCES = [
    {"count": 1, "name": "ok"},
    {"count": True, "name": "ok"},  # a boolean is not an integer
    {"count": 1.0, "name": "ok"},  # an integer written 1.0: valid for 2020-12
    {"count": -1, "name": "ok"},
    {"count": 1, "name": ""},
    {"count": 1, "name": "Upper"},
    {"count": 1, "name": "ok", "ratio": False},
    {"count": 1, "name": "ok", "flag": 0},
    {"count": 1, "name": "ok", "tags": ["a", "a"]},
    {"count": 1, "name": "ok", "tags": ["a", 1]},
    {"count": 1, "name": "ok", "kind": "c"},
    {"count": 1, "name": "ok", "either": 3},
    {"count": 1, "name": "ok", "either": None},
    {"count": 1, "name": "ok", "extra": 1},
    {"name": "ok"},
    [],
    None,
]


@pytest.mark.parametrize("instance", INSTANCES, ids=range(len(INSTANCES)))
def test_the_quick_check_never_accepts_what_jsonschema_refuses(instance: object) -> None:
    validator = Draft202012Validator(SCHEMA_UNDER_TEST)
    refused = any(True for _ in validator.iter_errors(instance))

    assert (schema_problems(validator, instance) != []) == refused


def test_a_schema_with_keywords_read_differently_by_the_drafts_gets_no_quick_check() -> None:
    tuple_items = Draft202012Validator({"type": "array", "prefixItems": [{"type": "string"}]})
    unknown = Draft202012Validator({"type": "object", "unevaluatedProperties": False})

    assert schema_problems(tuple_items, [1]) != []
    assert schema_problems(unknown, {"x": 1}) != []
    assert not schema_checks._is_plain(tuple_items.schema)
    assert not schema_checks._is_plain(unknown.schema)
    assert schema_checks._is_plain(SCHEMA_UNDER_TEST)

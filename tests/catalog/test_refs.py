"""Entity refs are parsed, defaulted, written and compared as Backstage does."""

import pytest

from catalog.refs import EntityRef, parse_ref, ref_of
from portal.errors import InvalidInput


def test_a_full_ref_names_kind_namespace_and_name() -> None:
    assert parse_ref("component:ml/scorer") == EntityRef("component", "ml", "scorer")


def test_a_ref_without_namespace_is_in_the_default_namespace() -> None:
    assert parse_ref("component:scorer").namespace == "default"
    assert parse_ref("component:scorer", default_namespace="ml").namespace == "ml"


def test_a_ref_without_kind_takes_the_default_kind() -> None:
    ref = parse_ref("ml/fraud", default_kind="Group")
    assert (ref.kind, ref.namespace, ref.name) == ("Group", "ml", "fraud")
    assert parse_ref("user:alice", default_kind="Group").kind == "user"


def test_a_ref_without_kind_and_no_default_is_invalid_naming_the_field() -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_ref("scorer", field="spec.dependsOn[0]")
    [problem] = caught.value.errors
    assert problem.field == "spec.dependsOn[0]"
    assert problem.message == '"scorer" has no kind'
    assert problem.expected == "kind:[namespace/]name, e.g. component:default/scorer"
    assert str(caught.value) == 'spec.dependsOn[0]: "scorer" has no kind'


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("", "empty"),
        (":scorer", '":scorer" has an empty kind'),
        ("component:", '"component:" has an empty name'),
        ("component:/scorer", '"component:/scorer" has an empty namespace'),
        ("component:default/", '"component:default/" has an empty name'),
        ("a:b:c", '"a:b:c" has too many separators'),
        ("a/b/c", '"a/b/c" has too many separators'),
        ("default/team:a", '"default/team:a" has its parts out of order'),
    ],
)
def test_a_malformed_ref_is_invalid_saying_what_is_wrong(value: str, message: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_ref(value, default_kind="Group", field="spec.owner")
    [problem] = caught.value.errors
    assert (problem.field, problem.message) == ("spec.owner", message)
    assert problem.expected == "[kind:][namespace/]name, the kind Group when left out"


def test_a_ref_that_is_not_a_string_is_invalid() -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_ref(42, field="spec.owner")  # type: ignore[arg-type]
    assert caught.value.errors[0].field == "spec.owner"


def test_a_mapping_of_parts_is_a_ref_too() -> None:
    assert parse_ref({"kind": "API", "namespace": "ml", "name": "scores"}) == EntityRef(
        "api", "ml", "scores"
    )
    assert parse_ref({"name": "fraud"}, default_kind="Group") == EntityRef(
        "group", "default", "fraud"
    )


def test_a_mapping_without_name_is_invalid_naming_the_part() -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_ref({"kind": "Group"}, field="target")
    assert caught.value.errors[0].field == "target.name"


def test_written_out_kind_and_namespace_are_lower_cased_and_the_name_kept() -> None:
    assert str(EntityRef("Component", "ML", "FraudScorer")) == "component:ml/FraudScorer"


def test_the_key_is_the_whole_ref_lower_cased() -> None:
    assert EntityRef("Component", "ML", "FraudScorer").key == "component:ml/fraudscorer"


@pytest.mark.parametrize(
    "written", ["component:default/scorer", "api:ml/Scores", "group:default/team-a"]
)
def test_a_written_ref_parses_back_to_itself(written: str) -> None:
    ref = parse_ref(written)
    assert str(ref) == written
    assert parse_ref(str(ref)) == ref


def test_refs_compare_and_hash_case_insensitively() -> None:
    upper, lower = EntityRef("Group", "Default", "Team-A"), EntityRef("group", "default", "team-a")
    assert upper == lower
    assert len({upper, lower}) == 1
    assert upper != EntityRef("group", "default", "team-b")


def test_refs_sort_by_key() -> None:
    refs = [parse_ref("group:b"), parse_ref("API:a"), parse_ref("component:Z")]
    assert [str(ref) for ref in sorted(refs)] == [
        "api:default/a",
        "component:default/Z",
        "group:default/b",
    ]


def test_an_entity_s_ref_defaults_its_namespace() -> None:
    entity = {"kind": "Component", "metadata": {"name": "scorer"}}
    assert ref_of(entity) == EntityRef("Component", "default", "scorer")
    entity["metadata"] = {"name": "scorer", "namespace": "ml"}
    assert str(ref_of(entity)) == "component:ml/scorer"


def test_an_entity_without_name_has_no_ref() -> None:
    with pytest.raises(InvalidInput) as caught:
        ref_of({"kind": "Component", "metadata": {}})
    assert caught.value.errors[0].field == "metadata.name"

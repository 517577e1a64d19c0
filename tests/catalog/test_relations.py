"""An entity's spec implies relations, each with its inverse, as Backstage's well-known ones."""

from typing import Any

import pytest

from catalog.refs import EntityRef
from catalog.relations import INVERSE, PAIRS, RELATION_TYPES, Relation, relations_of
from portal.errors import InvalidInput


def entity(
    kind: str, spec: dict[str, Any], *, name: str = "x", namespace: str | None = None
) -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": name}
    if namespace is not None:
        metadata["namespace"] = namespace
    api_version = "paved.dev/v1alpha1" if kind in ("Model", "Dataset") else "backstage.io/v1alpha1"
    return {"apiVersion": api_version, "kind": kind, "metadata": metadata, "spec": spec}


def edges(relations: list[Relation]) -> set[tuple[str, str, str]]:
    return {(str(r.source), r.type, str(r.target)) for r in relations}


def both_ways(source: str, type_: str, target: str) -> set[tuple[str, str, str]]:
    return {(source, type_, target), (target, INVERSE[type_], source)}


def test_a_component_s_refs_become_relations_in_both_directions() -> None:
    component = entity(
        "Component",
        {
            "type": "service",
            "lifecycle": "production",
            "owner": "team-a",
            "system": "audio",
            "subcomponentOf": "player",
            "providesApis": ["playback-api"],
            "consumesApis": ["api:search-api"],
            "dependsOn": ["resource:db", "component:cache"],
        },
        name="scorer",
    )
    me = "component:default/scorer"
    assert edges(relations_of(component)) == (
        both_ways(me, "ownedBy", "group:default/team-a")
        | both_ways(me, "partOf", "system:default/audio")
        | both_ways(me, "partOf", "component:default/player")
        | both_ways(me, "providesApi", "api:default/playback-api")
        | both_ways(me, "consumesApi", "api:default/search-api")
        | both_ways(me, "dependsOn", "resource:default/db")
        | both_ways(me, "dependsOn", "component:default/cache")
    )


def test_the_owner_relation_and_its_inverse_are_written_out() -> None:
    relations = relations_of(entity("Component", {"owner": "team-a"}, name="scorer"))
    scorer = EntityRef("Component", "default", "scorer")
    team = EntityRef("Group", "default", "team-a")
    assert relations == [Relation(scorer, "ownedBy", team), Relation(team, "ownerOf", scorer)]


def test_a_group_s_parent_children_and_members() -> None:
    group = entity(
        "Group",
        {
            "type": "team",
            "parent": "ml",
            "children": ["fraud", "group:ranking"],
            "members": ["alice"],
        },
        name="ml-platform",
    )
    me = "group:default/ml-platform"
    assert edges(relations_of(group)) == (
        both_ways(me, "childOf", "group:default/ml")
        | both_ways(me, "parentOf", "group:default/fraud")
        | both_ways(me, "parentOf", "group:default/ranking")
        | both_ways(me, "hasMember", "user:default/alice")
    )


def test_a_user_is_a_member_of_groups() -> None:
    user = entity("User", {"memberOf": ["fraud", "ops/oncall"]}, name="alice")
    assert edges(relations_of(user)) == both_ways(
        "user:default/alice", "memberOf", "group:default/fraud"
    ) | both_ways("user:default/alice", "memberOf", "group:ops/oncall")


def test_systems_domains_apis_resources_and_templates() -> None:
    cases = [
        (entity("System", {"owner": "a", "domain": "audio"}), "partOf", "domain:default/audio"),
        (
            entity("Domain", {"owner": "a", "subdomainOf": "media"}),
            "partOf",
            "domain:default/media",
        ),
        (entity("API", {"owner": "a", "system": "audio"}), "partOf", "system:default/audio"),
        (
            entity("Resource", {"owner": "a", "dependsOn": ["resource:s3"]}),
            "dependsOn",
            "resource:default/s3",
        ),
        (entity("Template", {"owner": "user:guest"}), "ownedBy", "user:default/guest"),
    ]
    for whole, type_, target in cases:
        source = f"{whole['kind'].lower()}:default/x"
        assert both_ways(source, type_, target) <= edges(relations_of(whole))


def test_a_model_is_trained_on_datasets() -> None:
    model = entity(
        "Model",
        {
            "owner": "fraud",
            "system": "payments",
            "trainedOn": ["transactions", "dataset:finance/chargebacks"],
            "dependsOn": ["resource:feature-store"],
        },
        name="fraud-scorer",
    )
    me = "model:default/fraud-scorer"
    assert edges(relations_of(model)) == (
        both_ways(me, "ownedBy", "group:default/fraud")
        | both_ways(me, "partOf", "system:default/payments")
        | both_ways(me, "trainedOn", "dataset:default/transactions")
        | both_ways(me, "trainedOn", "dataset:finance/chargebacks")
        | both_ways(me, "dependsOn", "resource:default/feature-store")
    )
    assert ("dataset:default/transactions", "trainingDataFor", me) in edges(relations_of(model))


def test_a_dataset_belongs_to_a_system_and_depends_on_its_store() -> None:
    dataset = entity(
        "Dataset", {"owner": "fraud", "system": "payments", "dependsOn": ["resource:s3"]}
    )
    assert edges(relations_of(dataset)) == (
        both_ways("dataset:default/x", "ownedBy", "group:default/fraud")
        | both_ways("dataset:default/x", "partOf", "system:default/payments")
        | both_ways("dataset:default/x", "dependsOn", "resource:default/s3")
    )


def test_refs_without_namespace_are_in_the_entity_s_own_namespace() -> None:
    component = entity(
        "Component",
        {"owner": "team-a", "system": "default/audio", "providesApis": ["API:Search"]},
        name="scorer",
        namespace="ml",
    )
    scorer = EntityRef("component", "ml", "scorer")
    targets = {str(r.target) for r in relations_of(component) if r.source == scorer}
    assert targets == {"group:ml/team-a", "system:default/audio", "api:ml/Search"}


def test_the_same_relation_twice_is_kept_once() -> None:
    component = entity(
        "Component", {"owner": "team-a", "consumesApis": ["search", "API:default/Search"]}
    )
    assert len(relations_of(component)) == 4


def test_an_entity_without_spec_or_refs_has_no_relations() -> None:
    assert relations_of({"kind": "Component", "metadata": {"name": "x"}}) == []
    assert relations_of(entity("Location", {"targets": ["./a.yaml"]})) == []


@pytest.mark.parametrize(
    ("spec", "field", "message"),
    [
        ({"owner": "group:"}, "spec.owner", '"group:" has an empty name'),
        ({"owner": 3}, "spec.owner", "3 is not an entity ref"),
        ({"dependsOn": ["resource:db", "db"]}, "spec.dependsOn[1]", '"db" has no kind'),
        ({"providesApis": "search"}, "spec.providesApis", '"search" is not a list'),
        ({"subcomponentOf": "a:b:c"}, "spec.subcomponentOf", '"a:b:c" has too many separators'),
    ],
)
def test_a_ref_that_cannot_be_read_names_its_field(
    spec: dict[str, Any], field: str, message: str
) -> None:
    with pytest.raises(InvalidInput) as caught:
        relations_of(entity("Component", spec, name="scorer"))
    [problem] = caught.value.errors
    assert (problem.field, problem.message) == (field, message)
    assert problem.expected


def test_every_unreadable_ref_is_reported_at_once() -> None:
    with pytest.raises(InvalidInput) as caught:
        relations_of(entity("Component", {"owner": "", "dependsOn": ["db"]}, name="scorer"))
    assert caught.value.detail == (
        "component:default/scorer: 2 bad entity refs: "
        'spec.owner: empty; spec.dependsOn[0]: "db" has no kind'
    )


def test_every_relation_type_has_an_inverse_that_leads_back() -> None:
    assert len(RELATION_TYPES) == 2 * len(PAIRS) == 16
    for type_ in RELATION_TYPES:
        assert INVERSE[INVERSE[type_]] == type_

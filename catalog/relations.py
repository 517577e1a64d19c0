"""Relations: the edges between entities that their specs imply, in both directions.

Each spec field that names other entities yields one relation from the entity to each
named entity, and its inverse back (Backstage's well-known relations, plus Paved's
``trainedOn``). A ref in these fields may leave out its kind (the field's default kind
below is meant) and its namespace (the entity's own namespace is meant).

=========================  ===============  ============  ==========================
kind                       spec field       default kind  relation (inverse)
=========================  ===============  ============  ==========================
every kind with an owner   owner            Group         ownedBy (ownerOf)
Component                  system           System        partOf (hasPart)
Component                  subcomponentOf   Component     partOf (hasPart)
Component                  providesApis     API           providesApi (apiProvidedBy)
Component                  consumesApis     API           consumesApi (apiConsumedBy)
Component, Resource        dependsOn        none          dependsOn (dependencyOf)
Component, Resource        dependencyOf     none          dependencyOf (dependsOn)
API, Resource              system           System        partOf (hasPart)
System                     domain           Domain        partOf (hasPart)
Domain                     subdomainOf      Domain        partOf (hasPart)
Group                      parent           Group         childOf (parentOf)
Group                      children         Group         parentOf (childOf)
Group                      members          User          hasMember (memberOf)
User                       memberOf         Group         memberOf (hasMember)
Model, Dataset, AiResource system           System        partOf (hasPart)
Model                      trainedOn        Dataset       trainedOn (trainingDataFor)
Model, Dataset             dependsOn        none          dependsOn (dependencyOf)
=========================  ===============  ============  ==========================

"Every kind with an owner": Component, API, Resource, System, Domain, Template, Model,
Dataset and AiResource. ``dependsOn`` and ``dependencyOf`` have no default kind, so
their refs must say it (``resource:artists-db``). A plugin that adds a kind adds its
fields to :data:`SPEC_REF_FIELDS`.
See https://backstage.io/docs/features/software-catalog/well-known-relations
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from catalog.refs import EntityRef, parse_ref, ref_form, ref_of
from portal.errors import FieldProblem, InvalidInput

OWNED_BY = "ownedBy"
OWNER_OF = "ownerOf"
PART_OF = "partOf"
HAS_PART = "hasPart"
DEPENDS_ON = "dependsOn"
DEPENDENCY_OF = "dependencyOf"
PROVIDES_API = "providesApi"
API_PROVIDED_BY = "apiProvidedBy"
CONSUMES_API = "consumesApi"
API_CONSUMED_BY = "apiConsumedBy"
MEMBER_OF = "memberOf"
HAS_MEMBER = "hasMember"
CHILD_OF = "childOf"
PARENT_OF = "parentOf"
TRAINED_ON = "trainedOn"
TRAINING_DATA_FOR = "trainingDataFor"

# Each relation type and its inverse: the same edge seen from the other end.
PAIRS: tuple[tuple[str, str], ...] = (
    (OWNED_BY, OWNER_OF),
    (PART_OF, HAS_PART),
    (DEPENDS_ON, DEPENDENCY_OF),
    (PROVIDES_API, API_PROVIDED_BY),
    (CONSUMES_API, API_CONSUMED_BY),
    (MEMBER_OF, HAS_MEMBER),
    (CHILD_OF, PARENT_OF),
    (TRAINED_ON, TRAINING_DATA_FOR),
)
INVERSE: dict[str, str] = dict(PAIRS) | {b: a for a, b in PAIRS}
RELATION_TYPES: tuple[str, ...] = tuple(INVERSE)


@dataclass(frozen=True)
class Relation:
    """A directed edge: ``source`` has relation ``type`` to ``target``."""

    source: EntityRef
    type: str
    target: EntityRef


@dataclass(frozen=True)
class RefField:
    """A spec field naming other entities: one ref (``many=False``) or a list of refs."""

    name: str
    relation: str
    default_kind: str | None
    many: bool = False


_OWNER = RefField("owner", OWNED_BY, "Group")
_SYSTEM = RefField("system", PART_OF, "System")
_DEPENDS_ON = RefField("dependsOn", DEPENDS_ON, None, many=True)
_DEPENDENCY_OF = RefField("dependencyOf", DEPENDENCY_OF, None, many=True)

# Keyed by the lower-cased kind: which spec fields of that kind yield relations.
SPEC_REF_FIELDS: dict[str, tuple[RefField, ...]] = {
    "component": (
        _OWNER,
        _SYSTEM,
        RefField("subcomponentOf", PART_OF, "Component"),
        RefField("providesApis", PROVIDES_API, "API", many=True),
        RefField("consumesApis", CONSUMES_API, "API", many=True),
        _DEPENDS_ON,
        _DEPENDENCY_OF,
    ),
    "api": (_OWNER, _SYSTEM),
    "resource": (_OWNER, _SYSTEM, _DEPENDS_ON, _DEPENDENCY_OF),
    "system": (_OWNER, RefField("domain", PART_OF, "Domain")),
    "domain": (_OWNER, RefField("subdomainOf", PART_OF, "Domain")),
    "group": (
        RefField("parent", CHILD_OF, "Group"),
        RefField("children", PARENT_OF, "Group", many=True),
        RefField("members", HAS_MEMBER, "User", many=True),
    ),
    "user": (RefField("memberOf", MEMBER_OF, "Group", many=True),),
    "template": (_OWNER,),
    "airesource": (_OWNER, _SYSTEM),
    "model": (
        _OWNER,
        _SYSTEM,
        RefField("trainedOn", TRAINED_ON, "Dataset", many=True),
        _DEPENDS_ON,
    ),
    "dataset": (_OWNER, _SYSTEM, _DEPENDS_ON),
}


def relations_of(entity: Mapping[str, Any]) -> list[Relation]:
    """Every relation ``entity``'s spec implies, each with its inverse, without duplicates.

    Raises ``InvalidInput`` listing every ref that cannot be parsed, each named by its
    field (``spec.owner``, ``spec.dependsOn[1]``). An entity with no spec, or of a kind
    with no ref fields, has no relations.
    """
    source = ref_of(entity)
    spec = entity.get("spec")
    if not isinstance(spec, Mapping):
        return []
    relations: dict[Relation, None] = {}
    problems: list[FieldProblem] = []
    for ref_field in SPEC_REF_FIELDS.get(source.kind.lower(), ()):
        for target in _targets(spec, ref_field, source.namespace, problems):
            relations[Relation(source, ref_field.relation, target)] = None
            relations[Relation(target, INVERSE[ref_field.relation], source)] = None
    if problems:
        summary = "; ".join(f"{p.field}: {p.message}" for p in problems)
        raise InvalidInput(f"{source}: {_count(problems)}: {summary}", problems)
    return list(relations)


def _targets(
    spec: Mapping[str, Any], ref_field: RefField, namespace: str, problems: list[FieldProblem]
) -> list[EntityRef]:
    value = spec.get(ref_field.name)
    field = f"spec.{ref_field.name}"
    if value is None:
        return []
    if not ref_field.many:
        return _parsed([(field, value)], ref_field, namespace, problems)
    if not isinstance(value, list):
        expected = f"a list of entity refs: {ref_form(ref_field.default_kind)}"
        problems.append(
            FieldProblem(field, f"{json.dumps(value, default=str)} is not a list", expected)
        )
        return []
    return _parsed(
        [(f"{field}[{i}]", item) for i, item in enumerate(value)], ref_field, namespace, problems
    )


def _parsed(
    values: list[tuple[str, object]],
    ref_field: RefField,
    namespace: str,
    problems: list[FieldProblem],
) -> list[EntityRef]:
    refs = []
    for field, value in values:
        if not isinstance(value, str | Mapping):
            expected = ref_form(ref_field.default_kind)
            problems.append(
                FieldProblem(
                    field, f"{json.dumps(value, default=str)} is not an entity ref", expected
                )
            )
            continue
        try:
            refs.append(
                parse_ref(
                    value,
                    default_kind=ref_field.default_kind,
                    default_namespace=namespace,
                    field=field,
                )
            )
        except InvalidInput as error:
            problems.extend(error.errors)
    return refs


def _count(problems: list[FieldProblem]) -> str:
    return "1 bad entity ref" if len(problems) == 1 else f"{len(problems)} bad entity refs"

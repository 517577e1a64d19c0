"""Registered models and their versions, read from and written to MLflow, with the approvals
Paved keeps beside them."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlmodel import Session, col, select

from catalog import service as catalog
from catalog.models import CatalogEntity
from catalog.refs import EntityRef, ref_of
from plugins.registry.models import ApprovalOut, ModelApproval, ModelOut, VersionOut
from portal import Identity, Settings
from portal.db import as_utc
from portal.errors import EngineUnavailable, InvalidInput, NotFound
from portal.tracking import model_version_url, register_model, run_url, tracking_client

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$")
ALIAS = re.compile(r"^[a-z][a-z0-9_-]{0,63}$")
PRODUCTION_ALIAS = "champion"
PAGE_SIZE = 1000  # models or versions in one MLflow search
ENTITY_CHUNK = 100  # registered models whose entities one catalog query looks up
REGISTERED_BY = "paved.registered_by"


@dataclass(frozen=True)
class ModelFacts:
    """What the policy is told about a registered model (and one of its versions)."""

    name: str
    entity: CatalogEntity | None
    version: str | None = None
    requested_by: str | None = None
    is_approved: bool = False

    @property
    def ref(self) -> str:
        return str(ref_of(self.entity.body)) if self.entity else f"model:default/{self.name}"

    @property
    def owner(self) -> str | None:
        if self.entity is None:
            return None
        return str(self.entity.body.get("spec", {}).get("owner") or "") or None


def check_name(name: str) -> str:
    if not NAME.match(name):
        raise InvalidInput.for_field(
            "name", f"{name!r} is not a model name", "letters, digits, '.', '_' or '-'"
        )
    return name


def model_entity(session: Session, name: str) -> CatalogEntity | None:
    """The Model entity of a registered model: the one whose ``spec.registeredModel`` names
    it, else the Model of the same name."""
    found = catalog.search_entities(
        session, [f"kind=model,spec.registeredModel={name}"], "", limit=2
    )
    if found:
        return found[0]
    try:
        return catalog.get_entity(session, EntityRef("model", "default", name))
    except NotFound:
        return None


def _mlflow_errors(work: Any) -> Any:
    from mlflow.exceptions import MlflowException

    try:
        return work()
    except MlflowException as exc:
        if exc.error_code in ("RESOURCE_DOES_NOT_EXIST", "NOT_FOUND"):
            raise NotFound(exc.message) from None
        if exc.error_code == "INVALID_PARAMETER_VALUE":
            raise InvalidInput.for_field("body", exc.message, "a value MLflow accepts") from None
        raise EngineUnavailable(f"MLflow refused: {exc.message}") from None


def model_facts(session: Session, name: str, version: str | None, settings: Settings) -> ModelFacts:
    check_name(name)
    entity = model_entity(session, name)
    if version is None:
        return ModelFacts(name, entity)
    found = get_model_version(settings, name, version)
    return ModelFacts(
        name,
        entity,
        version=version,
        requested_by=found.tags.get(REGISTERED_BY),
        is_approved=is_approved(session, name, version),
    )


def get_model_version(settings: Settings, name: str, version: str) -> Any:
    if not version.isdigit():
        raise InvalidInput.for_field("version", f"{version!r} is not a version", "a number")
    client = tracking_client(settings)
    return _mlflow_errors(lambda: client.get_model_version(name, version))


def list_models(
    session: Session, settings: Settings, *, page_size: int = PAGE_SIZE
) -> list[ModelOut]:
    """Every registered model with its version count and latest version: MLflow is asked
    for every model and every version a page at a time, and the catalog for the Model
    entities once per hundred models, however many models there are."""
    client = tracking_client(settings)
    models = _every_page(
        lambda token: client.search_registered_models(max_results=page_size, page_token=token)
    )
    versions: dict[str, list[int]] = {}
    for version in _every_page(
        lambda token: client.search_model_versions(max_results=page_size, page_token=token)
    ):
        versions.setdefault(version.name, []).append(int(version.version))
    entities = model_entities(session, [model.name for model in models])
    shown = []
    for model in models:
        entity = entities.get(model.name)
        numbers = versions.get(model.name, [])
        shown.append(
            ModelOut(
                name=model.name,
                description=model.description or "",
                entity=str(ref_of(entity.body)) if entity else None,
                owner=(entity.body.get("spec", {}).get("owner") if entity else None),
                aliases={alias: str(v) for alias, v in (model.aliases or {}).items()},
                latest_version=str(max(numbers)) if numbers else None,
                versions=len(numbers),
                tags=dict(model.tags or {}),
            )
        )
    return shown


def every_version(client: Any, *, page_size: int = PAGE_SIZE) -> list[Any]:
    """Every version of every registered model, a page at a time."""
    return _every_page(
        lambda token: client.search_model_versions(max_results=page_size, page_token=token)
    )


def _every_page(fetch: Callable[[str | None], Any]) -> list[Any]:
    """Every item of an MLflow search, following its page tokens."""
    found: list[Any] = []
    token = None
    while True:
        page = _mlflow_errors(lambda asked=token: fetch(asked))
        found.extend(page)
        token = page.token
        if not token:
            return found


def model_entities(session: Session, names: list[str]) -> dict[str, CatalogEntity]:
    """The Model entity of each registered model of ``names``, as ``model_entity`` finds
    it, in one catalog query per ``ENTITY_CHUNK`` names."""
    by_model: dict[str, CatalogEntity] = {}
    by_name: dict[str, CatalogEntity] = {}
    for start in range(0, len(names), ENTITY_CHUNK):
        chunk = names[start : start + ENTITY_CHUNK]
        filters = [f"kind=model,spec.registeredModel={name}" for name in chunk]
        filters += [f"kind=model,metadata.namespace=default,metadata.name={name}" for name in chunk]
        for entity in catalog.search_entities(session, filters, "", limit=2 * len(filters)):
            registered = entity.body.get("spec", {}).get("registeredModel")
            if isinstance(registered, str):
                by_model.setdefault(registered, entity)
            metadata = entity.body.get("metadata", {})
            if metadata.get("namespace", "default") == "default":
                by_name.setdefault(metadata.get("name", ""), entity)
    found = {name: by_model.get(name) or by_name.get(name) for name in names}
    return {name: entity for name, entity in found.items() if entity is not None}


def list_versions(session: Session, name: str, settings: Settings) -> list[VersionOut]:
    """Every version of ``name``, newest first, each with its lineage and approvals."""
    check_name(name)
    client = tracking_client(settings)
    aliases = _aliases_of(client, name)
    versions = _mlflow_errors(lambda: client.search_model_versions(f"name='{name}'"))
    approvals = _approvals_of(session, name)
    shown = [_shown(client, settings, v, aliases, approvals) for v in versions]
    return sorted(shown, key=lambda v: int(v.version), reverse=True)


def get_version(session: Session, name: str, version: str, settings: Settings) -> VersionOut:
    """One version of ``name`` with its lineage and approvals."""
    found = get_model_version(settings, name, version)
    client = tracking_client(settings)
    approvals = _approvals_of(session, name, version)
    return _shown(client, settings, found, _aliases_of(client, name), approvals)


def _aliases_of(client: Any, name: str) -> dict[str, list[str]]:
    """The aliases of each version of ``name`` (``{"3": ["champion"]}``)."""
    model = _mlflow_errors(lambda: client.get_registered_model(name))
    aliases: dict[str, list[str]] = {}
    for alias, version in (model.aliases or {}).items():
        aliases.setdefault(str(version), []).append(alias)
    return aliases


def _shown(
    client: Any,
    settings: Settings,
    version: Any,
    aliases: dict[str, list[str]],
    approvals: dict[str, list[ModelApproval]],
) -> VersionOut:
    run = None
    if version.run_id:
        try:
            run = client.get_run(version.run_id)
        except Exception:  # a run deleted since: the version stays listed without lineage
            run = None
    tags = dict(run.data.tags) if run else {}
    decided = approvals.get(str(version.version), [])
    created = (
        datetime.fromtimestamp(version.creation_timestamp / 1000, tz=UTC)
        if version.creation_timestamp
        else None
    )
    return VersionOut(
        model=version.name,
        version=str(version.version),
        status=str(version.status),
        description=version.description or "",
        source=str(version.source),
        aliases=sorted(aliases.get(str(version.version), [])),
        created_at=created,
        registered_by=(version.tags or {}).get(REGISTERED_BY),
        run_id=version.run_id,
        run_url=run_url(settings, run.info.experiment_id, run.info.run_id) if run else None,
        version_url=model_version_url(settings, version.name, version.version),
        metrics=dict(run.data.metrics) if run else {},
        params=dict(run.data.params) if run else {},
        git_commit=tags.get("mlflow.source.git.commit"),
        project=tags.get("paved.project"),
        trained_on=[ref for ref in tags.get("paved.trained_on", "").split(",") if ref],
        training_job=tags.get("paved.job"),
        approved=_is_approved(decided),
        approvals=[
            ApprovalOut(
                decision=a.decision,
                comment=a.comment,
                requested_by=a.requested_by,
                decided_by=a.decided_by,
                decided_at=a.decided_at,
            )
            for a in decided
        ],
    )


def _approvals_of(
    session: Session, name: str, version: str | None = None
) -> dict[str, list[ModelApproval]]:
    query = select(ModelApproval).where(col(ModelApproval.model) == name)
    if version is not None:
        query = query.where(col(ModelApproval.version) == version)
    found: dict[str, list[ModelApproval]] = {}
    for approval in session.exec(query.order_by(col(ModelApproval.id))):
        found.setdefault(approval.version, []).append(approval)
    return found


def _is_approved(decided: list[ModelApproval]) -> bool:
    """The latest decision stands: a rejection after an approval withdraws it."""
    return bool(decided) and decided[-1].decision == "approved"


def is_approved(session: Session, name: str, version: str) -> bool:
    return _is_approved(_approvals_of(session, name, version).get(version, []))


def approval_standing(
    session: Session, name: str, version: str, at: datetime
) -> ModelApproval | None:
    """The approval of ``name`` ``version`` in force at ``at`` (its latest decision before
    then, when that was an approval)."""
    decided = [
        approval
        for approval in _approvals_of(session, name, version).get(version, [])
        if as_utc(approval.decided_at) <= at
    ]
    return decided[-1] if _is_approved(decided) else None


def decisions_between(session: Session, since: datetime, until: datetime) -> list[ModelApproval]:
    """Every approval and rejection decided from ``since`` until before ``until``."""
    return list(
        session.exec(
            select(ModelApproval)
            .where(col(ModelApproval.decided_at) >= since, col(ModelApproval.decided_at) < until)
            .order_by(col(ModelApproval.id))
        ).all()
    )


def register_version(
    session: Session,
    name: str,
    *,
    run_id: str,
    artifact_path: str,
    description: str,
    by: Identity,
    settings: Settings,
) -> VersionOut:
    """A new version of ``name`` from the model a run logged, tagged with who registered it
    and the run's lineage."""
    check_name(name)
    client = tracking_client(settings)
    run = _mlflow_errors(lambda: client.get_run(run_id))
    _check_logged_model(client, run, artifact_path)
    tags = {REGISTERED_BY: by.ref}
    for key in ("mlflow.source.git.commit", "paved.project", "paved.trained_on", "paved.job"):
        if run.data.tags.get(key):
            tags[key] = run.data.tags[key]
    version = _mlflow_errors(
        lambda: register_model(settings, f"runs:/{run_id}/{artifact_path}", name, tags=tags)
    )
    if description:
        client.update_model_version(name, version.version, description=description)
    return next(
        v for v in list_versions(session, name, settings) if v.version == str(version.version)
    )


def _check_logged_model(client: Any, run: Any, artifact_path: str) -> None:
    """The run logged a model under ``artifact_path`` (as a logged model, MLflow 3's way, or
    as artifacts with an MLmodel file); checked before anything is created in MLflow."""
    quoted = artifact_path.replace("'", "")
    logged = _mlflow_errors(
        lambda: client.search_logged_models(
            experiment_ids=[run.info.experiment_id], filter_string=f"name = '{quoted}'"
        )
    )
    if any(model.source_run_id == run.info.run_id for model in logged):
        return
    files = _mlflow_errors(lambda: client.list_artifacts(run.info.run_id, artifact_path))
    if any(item.path.endswith("MLmodel") for item in files):
        return
    raise InvalidInput.for_field(
        "artifact_path",
        f"run {run.info.run_id} logged no model under {artifact_path!r}",
        "the name the run logged its model under (model)",
    )


def set_alias(
    session: Session, name: str, alias: str, version: str, *, settings: Settings
) -> VersionOut:
    """Point ``alias`` at ``version`` (the policy has decided whether it may)."""
    if not ALIAS.match(alias):
        raise InvalidInput.for_field("alias", f"{alias!r} is not an alias", "e.g. champion")
    get_model_version(settings, name, version)  # raises NotFound
    client = tracking_client(settings)
    _mlflow_errors(lambda: client.set_registered_model_alias(name, alias, version))
    return get_version(session, name, version, settings)


def decide_approval(
    session: Session,
    name: str,
    version: str,
    *,
    decision: str,
    comment: str,
    by: Identity,
    settings: Settings,
) -> VersionOut:
    """Record a team lead's decision (the policy has checked who may decide)."""
    found = get_model_version(settings, name, version)
    session.add(
        ModelApproval(
            model=name,
            version=version,
            decision=decision,
            comment=comment,
            requested_by=(found.tags or {}).get(REGISTERED_BY, ""),
            decided_by=by.ref,
        )
    )
    session.flush()
    return get_version(session, name, version, settings)

"""What a deploy is about: the registered version, its project, the Model and training
Datasets in the catalog, and the facts about them that the production policy reads."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlmodel import Session, col, select

from catalog import service as catalog
from catalog.refs import parse_ref, ref_of
from plugins.registry import service as registry
from plugins.serving.models import DeployIn, Deployment
from plugins.serving.runtimes import ServingRuntime
from plugins.training.projects import Project, find_project
from portal import Conflict, InvalidInput, PavedError, Resource, Settings

CLASSIFICATION_APPROVED_BY = "paved.dev/classification-approved-by"


@dataclass(frozen=True)
class Target:
    """A deploy request with everything the policy and the deploy need, found once."""

    asked: DeployIn
    name: str
    runtime: str
    facts: registry.ModelFacts
    project: Project | None
    existing: Deployment | None
    datasets: list[dict[str, Any]] = field(default_factory=list)

    @property
    def serving(self) -> dict[str, Any]:
        return dict(self.project.settings.get("serving") or {}) if self.project else {}

    @property
    def monitoring(self) -> dict[str, Any]:
        return dict(self.project.settings.get("monitoring") or {}) if self.project else {}

    @property
    def owner(self) -> str:
        return self.facts.owner or (self.project.owner if self.project else "") or ""

    def resource(self) -> Resource:
        return Resource(
            ref=f"deployment:{self.name}",
            kind="Deployment",
            owner=self.owner or None,
            facts={
                "deployment": self.name,
                "environment": self.asked.environment,
                "runtime": self.runtime,
                "model": self.facts.name,
                "model_ref": self.facts.ref,
                "version": self.asked.version,
                "canary_percent": self.asked.canary_percent,
                "approved": self.facts.is_approved,
                "registered_by": self.facts.requested_by,
                "datasets": self.datasets,
                "monitoring": monitoring_facts(self.monitoring),
            },
        )


def monitoring_facts(monitoring: dict[str, Any]) -> dict[str, Any]:
    """What the policy is told of a project's monitoring section: configured means enabled
    with at least one threshold to raise an alert on."""
    thresholds = {
        name: monitoring.get(name) for name in ("maxErrorRate", "maxP99Ms", "driftThreshold")
    }
    has_threshold = any(monitoring.get(name) is not None for name in ("maxErrorRate", "maxP99Ms"))
    return {
        "enabled": bool(monitoring.get("enabled")),
        "configured": bool(monitoring.get("enabled")) and has_threshold,
        **thresholds,
    }


def find_target(
    session: Session, asked: DeployIn, settings: Settings, runtimes: dict[str, ServingRuntime]
) -> Target:
    """Check a deploy request against the registry, the catalog and the settings."""
    environments = settings.serving.environments
    if asked.environment not in environments:
        raise InvalidInput.for_field(
            "environment", f"{asked.environment!r} is not an environment", " or ".join(environments)
        )
    facts = registry.model_facts(session, asked.model, asked.version, settings)
    project = project_of(session, facts)
    name = asked.name or default_name(asked.model, asked.environment)
    existing = session.exec(select(Deployment).where(col(Deployment.name) == name)).first()
    if existing is not None and existing.model != asked.model:
        raise Conflict(f"deployment {name} serves model {existing.model}, not {asked.model}")
    serving = dict(project.settings.get("serving") or {}) if project else {}
    runtime = (
        asked.runtime
        or (existing.runtime if existing else None)
        or serving.get("runtime")
        or settings.serving.default_runtime
    )
    if runtime not in runtimes:
        raise InvalidInput.for_field(
            "runtime", f"{runtime!r} is not a serving runtime here", " or ".join(sorted(runtimes))
        )
    if existing is not None and existing.runtime != runtime:
        raise Conflict(
            f"deployment {name} runs on {existing.runtime}; delete it to move it to {runtime}"
        )
    trained_on = project.trained_on if project else _trained_on(facts)
    return Target(
        asked=asked,
        name=name,
        runtime=runtime,
        facts=facts,
        project=project,
        existing=existing,
        datasets=[dataset_facts(session, ref) for ref in trained_on],
    )


def default_name(model: str, environment: str) -> str:
    text = f"{model}-{environment}".lower()
    cleaned = "".join(c if c.isalnum() else "-" for c in text).strip("-")
    return cleaned[:63].rstrip("-") or "deployment"


def project_of(session: Session, facts: registry.ModelFacts) -> Project | None:
    """The model's project (its paved-project.yaml), when its Model entity has one. A model
    without a project is served with the defaults; a project file that is wrong is an
    error, not a reason to deploy without its monitoring."""
    if facts.entity is None:
        return None
    try:
        return find_project(session, facts.ref, field="model")
    except InvalidInput as exc:
        if all(problem.field == "model" for problem in exc.errors):
            return None  # no Component names or holds this Model
        raise


def _trained_on(facts: registry.ModelFacts) -> list[str]:
    if facts.entity is None:
        return []
    return [str(ref) for ref in facts.entity.body.get("spec", {}).get("trainedOn", [])]


def dataset_facts(session: Session, ref: str) -> dict[str, Any]:
    """A training dataset as the production rule sees it: its classification, and who
    approved it (the ``paved.dev/classification-approved-by`` annotation, reviewed with the
    catalog file). A PII scan's result comes from the plugin that scans
    (``input.context.pii_scans``)."""
    try:
        parsed = parse_ref(ref, field="trainedOn", default_kind="dataset")
        entity = catalog.get_entity(session, parsed)
    except PavedError:
        return {
            "ref": ref,
            "found": False,
            "classification": None,
            "classification_approved": False,
        }
    body = entity.body
    approved_by = (body.get("metadata", {}).get("annotations") or {}).get(
        CLASSIFICATION_APPROVED_BY
    )
    return {
        "ref": ref_of(body).text,
        "found": True,
        "classification": body.get("spec", {}).get("classification"),
        "classification_approved": bool(approved_by),
        "classification_approved_by": approved_by,
    }

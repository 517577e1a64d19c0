"""Deployments: asked for through the API, brought up by a runtime in a task, switched in one
transaction once the new versions answer, rolled back by a person or by the canary's judge.

What answers a deployment's requests changes only in a transaction that also records the
change (its event, and its audit event): a deploy whose servers do not start changes
nothing, so the previous versions keep serving.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass, field
from typing import Any, Protocol

from sqlalchemy import event
from sqlmodel import Session, col, select

from catalog import service as catalog
from catalog.refs import parse_ref, ref_of
from plugins.registry import service as registry
from plugins.serving.models import (
    DeployIn,
    Deployment,
    DeploymentEvent,
    DeploymentOut,
    EventOut,
    MetricMinute,
    MetricPoint,
    VersionMetricsOut,
)
from plugins.serving.runtimes import ServingRuntime
from plugins.training.projects import Project, find_project
from portal import (
    Conflict,
    Identity,
    InvalidInput,
    NotFound,
    PavedError,
    Resource,
    Settings,
    audit,
    tasks,
)
from portal.db import utcnow
from portal.plugins import Plugins

TASK_KIND = "serving.apply"
RUNTIMES_HOOK = "paved_serving_runtimes"
# Who the audit log names for what Paved does by itself.
JUDGE = "paved:canary-judge"
RESTORER = "paved:serving"
CLASSIFICATION_APPROVED_BY = "paved.dev/classification-approved-by"


class Router(Protocol):
    def invalidate(self, name: str) -> None: ...


_routers: weakref.WeakSet[Any] = weakref.WeakSet()


def watch_routes(router: Router) -> None:
    """Have ``router`` told when a task of this process changes a route."""
    _routers.add(router)


def route_changed(name: str) -> None:
    """Tell every router of this process that ``name``'s route changed (a task switched or
    removed it); routers of other processes read it again within their cache time."""
    for router in list(_routers):
        router.invalidate(name)


def changes_route_on_commit(session: Session, name: str) -> None:
    """Tell this process's routers that ``name``'s route changed once ``session`` commits
    (not before: a router reading it meanwhile would keep the old one)."""
    event.listen(session, "after_commit", lambda _: route_changed(name), once=True)


def deployment_resource(deployment: Deployment, **facts: Any) -> Resource:
    """A deployment as the policy sees it (``input.resource``), with ``facts`` about the
    change asked for."""
    return Resource(
        ref=f"deployment:{deployment.name}",
        kind="Deployment",
        owner=deployment.owner or None,
        facts={
            "deployment": deployment.name,
            "environment": deployment.environment,
            "runtime": deployment.runtime,
            "model": deployment.model,
            "model_ref": deployment.model_ref,
            "version": deployment.stable_version,
            "canary_version": deployment.canary_version,
            **facts,
        },
    )


def available_runtimes(plugins: Plugins | None, settings: Settings) -> dict[str, ServingRuntime]:
    """Every serving runtime the plugins contribute, by name (the first of a name wins)."""
    found: dict[str, ServingRuntime] = {}
    if plugins is None:
        return found
    for contribution in plugins.collect(RUNTIMES_HOOK, ServingRuntime, settings=settings):
        runtime: ServingRuntime = contribution.item
        if runtime.name in found:
            plugins.degrade(contribution.plugin, f"serving runtime {runtime.name!r} is taken")
            continue
        found[runtime.name] = runtime
    return found


# -- What a deploy is about -----------------------------------------------------------------


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


# -- Changing deployments (in a request's transaction) --------------------------------------


def deploy(session: Session, target: Target, *, by: Identity, settings: Settings) -> Deployment:
    """Ask for ``target``'s version to be served: a new deployment, a new stable version
    (once it answers), or a canary beside the stable one. A task brings it up."""
    asked = target.asked
    existing = target.existing
    if existing is not None and existing.pending:
        raise Conflict(
            f"deployment {existing.name} is already bringing up {_pending_text(existing)} "
            f"(task {existing.task_id}); wait for it or roll it back"
        )
    _check_artifacts(settings, asked.model, asked.version)
    if existing is None:
        deployment = Deployment(
            name=target.name,
            model=asked.model,
            model_ref=target.facts.ref if target.facts.entity else None,
            project=target.project.ref if target.project else None,
            owner=target.owner,
            environment=asked.environment,
            runtime=target.runtime,
            created_by=by.ref,
        )
        if asked.canary_percent is not None:
            raise InvalidInput.for_field(
                "canary_percent",
                f"{target.name} serves nothing yet, so there is no stable version beside a canary",
                "no canary_percent for a first deploy",
            )
        pending: dict[str, Any] = {"stable": asked.version}
    else:
        deployment = existing
        if deployment.stable_version is None:
            pending = {"stable": asked.version}
        elif asked.canary_percent is not None:
            if asked.version == deployment.stable_version:
                raise InvalidInput.for_field(
                    "version", f"v{asked.version} is the stable version", "another version"
                )
            pending = {"canary": asked.version, "percent": asked.canary_percent}
        else:
            pending = {"stable": asked.version}
    deployment.pending = pending
    deployment.status = "deploying"
    deployment.message = f"bringing up {describe_pending(pending)}"
    deployment.serving = target.serving
    deployment.monitoring = target.monitoring
    deployment.updated_at = utcnow()
    session.add(deployment)
    session.flush()
    _enqueue(session, deployment, "deploy", by, target.resource())
    return deployment


def _check_artifacts(settings: Settings, model: str, version: str) -> None:
    """Fail now, with a clear message, for a version whose model files are gone."""
    from mlflow.artifacts import download_artifacts
    from mlflow.exceptions import MlflowException

    source = registry.get_model_version(settings, model, version).source
    try:
        download_artifacts(artifact_uri=f"models:/{model}/{version}/MLmodel")
    except (MlflowException, OSError) as exc:
        raise InvalidInput.for_field(
            "version",
            f"the model files of {model} v{version} are missing ({source}): "
            f"{' '.join(str(exc).split())[:300]}",
            "a version whose run's model artifacts still exist",
        ) from None


def _enqueue(
    session: Session, deployment: Deployment, what: str, by: Identity | None, resource: Resource
) -> None:
    title = f"{what.capitalize()} {deployment.name}"
    task = tasks.enqueue(session, TASK_KIND, title=title, created_by=by.ref if by else RESTORER)
    task.params = {
        "deployment_id": deployment.id,
        "what": what,
        "acting_as": by.to_session() if by else None,
        "resource": {
            "ref": resource.ref,
            "kind": resource.kind,
            "owner": resource.owner,
            "facts": dict(resource.facts),
        },
    }
    session.add(task)
    session.flush()
    deployment.task_id = task.id
    session.add(deployment)


def get_deployment(session: Session, name: str) -> Deployment:
    found = session.exec(select(Deployment).where(col(Deployment.name) == name)).first()
    if found is None:
        raise NotFound(f"there is no deployment {name}")
    return found


def list_deployments(
    session: Session, *, model: str | None = None, owner: str | None = None
) -> list[Deployment]:
    query = select(Deployment).order_by(col(Deployment.name))
    if model is not None:
        query = query.where(col(Deployment.model) == model)
    if owner is not None:
        query = query.where(col(Deployment.owner) == owner)
    return list(session.exec(query).all())


def list_events(session: Session, deployment: Deployment, limit: int = 50) -> list[DeploymentEvent]:
    query = (
        select(DeploymentEvent)
        .where(col(DeploymentEvent.deployment_id) == deployment.id)
        .order_by(col(DeploymentEvent.id).desc())
        .limit(limit)
    )
    return list(session.exec(query).all())


def record_event(
    session: Session, deployment: Deployment, kind: str, actor: str, message: str
) -> None:
    session.add(
        DeploymentEvent(
            deployment_id=deployment.id or 0,
            kind=kind,
            actor=actor,
            message=message,
            stable_version=deployment.stable_version,
            canary_version=deployment.canary_version,
            canary_percent=deployment.canary_percent,
        )
    )


def set_canary_percent(
    session: Session,
    deployment: Deployment,
    percent: int,
    *,
    by: Identity,
    runtimes: dict[str, ServingRuntime],
) -> Deployment:
    """Send ``percent`` of the traffic to the canary: at once through Paved's router, or
    through a task for a runtime that splits the traffic itself."""
    if deployment.canary_version is None:
        raise Conflict(
            f"deployment {deployment.name} has no canary; deploy one with canary_percent"
        )
    before = deployment.canary_percent
    deployment.canary_percent = percent
    deployment.updated_at = utcnow()
    session.add(deployment)
    record_event(
        session, deployment, "percent", by.ref,
        f"canary v{deployment.canary_version} from {before}% to {percent}% of traffic",
    )  # fmt: skip
    runtime = runtimes.get(deployment.runtime)
    if runtime is not None and runtime.splits_traffic:
        settle(session, deployment, by=by)
    changes_route_on_commit(session, deployment.name)
    return deployment


def promote(session: Session, deployment: Deployment, *, by: Identity) -> Deployment:
    """Make the canary the stable version: all traffic at once; the old stable version is kept
    running without traffic, so that a rollback is a switch."""
    canary = deployment.canary_version
    if canary is None:
        raise Conflict(f"deployment {deployment.name} has no canary to promote")
    old = deployment.stable_version
    deployment.previous_version = old
    deployment.stable_version = canary
    deployment.canary_version = None
    deployment.canary_percent = 0
    deployment.updated_at = utcnow()
    session.add(deployment)
    record_event(session, deployment, "promote", by.ref, f"v{canary} promoted over v{old}")
    settle(session, deployment, by=by)
    changes_route_on_commit(session, deployment.name)
    return deployment


def rollback(
    session: Session, deployment: Deployment, *, by: Identity | None, reason: str | None = None
) -> Deployment:
    """Send the traffic back at once: away from the canary if there is one, else back to the
    previous stable version (still running since the promotion). A deploy in progress is
    called off, and a task stops what no longer takes traffic. ``by`` None is the canary's
    judge, with its ``reason``."""
    actor = by.ref if by is not None else JUDGE
    pending = deployment.pending
    if deployment.canary_version is not None:
        done = (
            f"canary v{deployment.canary_version} rolled back; "
            f"v{deployment.stable_version} takes all traffic"
        )
        deployment.canary_version = None
        deployment.canary_percent = 0
    elif pending:
        done = f"the deploy of {describe_pending(pending)} called off"
    elif (
        deployment.previous_version is not None
        and deployment.previous_version in deployment.endpoints
    ):
        done = f"v{deployment.stable_version} rolled back to v{deployment.previous_version}"
        deployment.stable_version = deployment.previous_version
        deployment.previous_version = None
    else:
        raise Conflict(
            f"deployment {deployment.name} has no canary and no previous version running to "
            "roll back to"
        )
    if pending and deployment.task_id is not None:
        tasks.request_cancel(session, deployment.task_id, by=actor)
    deployment.pending = None
    deployment.status = "serving" if deployment.stable_version else "failed"
    deployment.message = done + (f": {reason}" if reason else "")
    deployment.updated_at = utcnow()
    session.add(deployment)
    record_event(session, deployment, "rollback", actor, deployment.message)
    settle(session, deployment, by=by)
    changes_route_on_commit(session, deployment.name)
    return deployment


def settle(session: Session, deployment: Deployment, *, by: Identity | None) -> None:
    """After a switch: a task stops the versions that no longer take traffic (and, for a
    runtime that splits traffic itself, applies the new split)."""
    if deployment.pending:
        return  # the running task applies the live state when it finishes
    _enqueue(session, deployment, "settle", by, deployment_resource(deployment))


def remove(session: Session, deployment: Deployment, *, by: Identity) -> Deployment:
    """Stop serving: the router refuses at once, a task stops the servers and deletes it."""
    deployment.status = "removing"
    deployment.message = "stopping its servers"
    deployment.pending = None
    deployment.updated_at = utcnow()
    session.add(deployment)
    record_event(session, deployment, "removed", by.ref, f"{deployment.name} removed")
    changes_route_on_commit(session, deployment.name)
    _enqueue(session, deployment, "remove", by, deployment_resource(deployment))
    return deployment


def restore_all(session: Session, runtimes: dict[str, ServingRuntime]) -> list[str]:
    """At start-up: bring back the servers of every deployment on a runtime whose servers do
    not outlive the portal (``local``). Returns the deployments restored."""
    restored = []
    for deployment in session.exec(select(Deployment)).all():
        runtime = runtimes.get(deployment.runtime)
        if runtime is None or not runtime.restores or deployment.stable_version is None:
            continue
        if deployment.status == "removing":
            continue
        deployment.endpoints = {}
        _enqueue(session, deployment, "restore", None, deployment_resource(deployment))
        restored.append(deployment.name)
    return restored


def recover(session: Session, name: str, why: str, runtimes: dict[str, ServingRuntime]) -> bool:
    """A version's server stopped answering: start what should serve again, once (a
    deployment already being changed is left to that change). Returns whether it will."""
    deployment = session.exec(select(Deployment).where(col(Deployment.name) == name)).first()
    if deployment is None or deployment.pending or deployment.status != "serving":
        return False
    runtime = runtimes.get(deployment.runtime)
    if runtime is None or not runtime.restores:
        return False
    deployment.status = "deploying"
    deployment.message = f"{why}; starting it again"
    session.add(deployment)
    record_event(session, deployment, "crashed", RESTORER, deployment.message)
    audit.append_event(
        session,
        actor=RESTORER,
        action="serving.deployment.restore",
        resource=f"deployment:{name}",
        allowed=True,
        reasons=[why],
        outcome="succeeded",
        detail={"automatic": True},
    )
    _enqueue(session, deployment, "restore", None, deployment_resource(deployment))
    return True


def _pending_text(deployment: Deployment) -> str:
    return describe_pending(deployment.pending or {})


def describe_pending(pending: dict[str, Any]) -> str:
    if "canary" in pending:
        return f"v{pending['canary']} as a {pending.get('percent', 0)}% canary"
    return f"v{pending.get('stable')}"


# -- Showing ---------------------------------------------------------------------------------


def thresholds(deployment: Deployment) -> dict[str, float | None]:
    """The canary's thresholds (``serving.canary``), else the monitoring ones."""
    canary = dict((deployment.serving or {}).get("canary") or {})
    monitoring = deployment.monitoring or {}
    error_rate = canary.get("maxErrorRate", monitoring.get("maxErrorRate"))
    p99 = canary.get("maxP99Ms", monitoring.get("maxP99Ms"))
    return {
        "max_error_rate": float(error_rate) if error_rate is not None else None,
        "max_p99_ms": float(p99) if p99 is not None else None,
        "drift_threshold": float(monitoring.get("driftThreshold", 0.2)),
    }


def shown(
    deployment: Deployment,
    *,
    base_url: str = "",
    metrics: dict[str, Any] | None = None,
    events: list[DeploymentEvent] | None = None,
) -> DeploymentOut:
    return DeploymentOut(
        name=deployment.name,
        model=deployment.model,
        model_ref=deployment.model_ref,
        project=deployment.project,
        owner=deployment.owner,
        environment=deployment.environment,
        runtime=deployment.runtime,
        status=deployment.status,
        message=deployment.message,
        stable_version=deployment.stable_version,
        canary_version=deployment.canary_version,
        canary_percent=deployment.canary_percent,
        previous_version=deployment.previous_version,
        pending=deployment.pending,
        endpoints=deployment.endpoints,
        url=f"{base_url.rstrip('/')}/serve/{deployment.name}/invocations",
        task_id=deployment.task_id,
        monitoring=deployment.monitoring,
        thresholds=thresholds(deployment),
        created_by=deployment.created_by,
        created_at=deployment.created_at,
        updated_at=deployment.updated_at,
        metrics={
            version: VersionMetricsOut.model_validate(summary)
            for version, summary in (metrics or {}).items()
        },
        events=[EventOut.model_validate(event, from_attributes=True) for event in events or []],
    )


def metric_history(session: Session, name: str, since: Any) -> list[MetricMinute]:
    query = (
        select(MetricMinute)
        .where(col(MetricMinute.deployment) == name, col(MetricMinute.minute) >= since)
        .order_by(col(MetricMinute.minute), col(MetricMinute.version))
    )
    return list(session.exec(query).all())


def automatic_rollback(session: Session, name: str, reason: str) -> Deployment | None:
    """The canary's judge found it failing: send all traffic to stable, in the same
    transaction as its event and audit event. None when there is no canary any more."""
    deployment = session.exec(select(Deployment).where(col(Deployment.name) == name)).first()
    if deployment is None or deployment.canary_version is None:
        return None
    canary = deployment.canary_version
    rollback(session, deployment, by=None, reason=reason)
    audit.append_event(
        session,
        actor=JUDGE,
        action="serving.deployment.rollback",
        resource=f"deployment:{name}",
        allowed=True,
        reasons=[reason],
        outcome="succeeded",
        detail={"automatic": True, "canary_version": canary, "reason": reason},
    )
    return deployment


def merged_minutes(rows: list[MetricMinute]) -> list[MetricPoint]:
    """One point per minute and version, adding up what each portal process wrote (their
    percentiles cannot be added: the highest is shown)."""
    merged: dict[tuple[Any, str], MetricPoint] = {}
    for row in rows:
        key = (row.minute, row.version)
        found = merged.get(key)
        if found is None:
            merged[key] = MetricPoint(
                minute=row.minute,
                version=row.version,
                requests=row.requests,
                errors=row.errors,
                error_rate=row.errors / row.requests if row.requests else 0.0,
                p50_ms=row.p50_ms,
                p99_ms=row.p99_ms,
            )
            continue
        requests = found.requests + row.requests
        errors = found.errors + row.errors
        merged[key] = found.model_copy(
            update={
                "requests": requests,
                "errors": errors,
                "error_rate": errors / requests if requests else 0.0,
                "p50_ms": _highest(found.p50_ms, row.p50_ms),
                "p99_ms": _highest(found.p99_ms, row.p99_ms),
            }
        )
    return list(merged.values())


def _highest(a: float | None, b: float | None) -> float | None:
    return max((v for v in (a, b) if v is not None), default=None)

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

from sqlalchemy import delete
from sqlmodel import Session, col, select

from catalog import service as catalog
from catalog.refs import parse_ref, ref_of
from plugins.registry import service as registry
from plugins.serving.actions import DEPLOYMENT_CREATE
from plugins.serving.drift import references_from_csv
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
from plugins.serving.runtimes import DeploymentState, RuntimeFailed, ServingRuntime, VersionSpec
from plugins.training.projects import Project, find_project, read_project_file
from portal import (
    Conflict,
    Identity,
    InvalidInput,
    NotFound,
    PavedError,
    Resource,
    Settings,
    TaskContext,
    TaskFailed,
    TaskHandler,
    audit,
    tasks,
)
from portal.db import utcnow
from portal.plugins import Plugins
from portal.tracking import tracking_client

TASK_KIND = "serving.apply"
RUNTIMES_HOOK = "paved_serving_runtimes"
# Who the audit log names for what Paved does by itself.
JUDGE = "paved:canary-judge"
RESTORER = "paved:serving"
PRODUCTION = "production"
CLASSIFICATION_APPROVED_BY = "paved.dev/classification-approved-by"
WARM = ("deploying", "serving")


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
    project = _project_of(session, facts)
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


def _project_of(session: Session, facts: registry.ModelFacts) -> Project | None:
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
    deployment.message = f"bringing up {_describe(pending)}"
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
    session: Session, deployment: Deployment, percent: int, *, by: Identity
) -> Deployment:
    """Send ``percent`` of the traffic to the canary (at once, through the router)."""
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
    return deployment


def rollback(
    session: Session, deployment: Deployment, *, actor: str, reason: str | None = None
) -> tuple[Deployment, str]:
    """Send the traffic back at once: away from the canary if there is one, else back to the
    previous stable version (still running since the promotion). A deploy in progress is
    called off. Returns the deployment and what was done, in words."""
    pending = deployment.pending
    if deployment.canary_version is not None:
        done = (
            f"canary v{deployment.canary_version} rolled back; "
            f"v{deployment.stable_version} takes all traffic"
        )
        deployment.canary_version = None
        deployment.canary_percent = 0
    elif pending:
        done = f"the deploy of {_describe(pending)} called off"
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
    return deployment, done


def settle(session: Session, deployment: Deployment, *, by: Identity | None) -> None:
    """After a switch: a task stops the versions that no longer take traffic (and, for a
    runtime that splits traffic itself, applies the new split)."""
    if deployment.pending:
        return  # the running task applies the live state when it finishes
    resource = Resource(
        ref=f"deployment:{deployment.name}", kind="Deployment", owner=deployment.owner
    )
    _enqueue(session, deployment, "settle", by, resource)


def remove(session: Session, deployment: Deployment, *, by: Identity) -> Deployment:
    """Stop serving: the router refuses at once, a task stops the servers and deletes it."""
    deployment.status = "removing"
    deployment.message = "stopping its servers"
    deployment.pending = None
    deployment.updated_at = utcnow()
    session.add(deployment)
    record_event(session, deployment, "removed", by.ref, f"{deployment.name} removed")
    resource = Resource(
        ref=f"deployment:{deployment.name}", kind="Deployment", owner=deployment.owner
    )
    _enqueue(session, deployment, "remove", by, resource)
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
        resource = Resource(
            ref=f"deployment:{deployment.name}", kind="Deployment", owner=deployment.owner
        )
        _enqueue(session, deployment, "restore", None, resource)
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
    resource = Resource(ref=f"deployment:{name}", kind="Deployment", owner=deployment.owner)
    _enqueue(session, deployment, "restore", None, resource)
    return True


def _pending_text(deployment: Deployment) -> str:
    return _describe(deployment.pending or {})


def _describe(pending: dict[str, Any]) -> str:
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


# -- The task --------------------------------------------------------------------------------


def run_apply(ctx: TaskContext) -> dict[str, Any]:
    """Bring a deployment's runtime to what it should serve, then switch in one transaction."""
    settings = ctx.settings
    assert settings is not None, "serving needs the portal's settings"
    what = str(ctx.params["what"])
    deployment = _load(ctx)
    runtimes = available_runtimes(ctx.plugins, settings)
    runtime = runtimes.get(deployment.runtime)
    if runtime is None:
        raise TaskFailed(f"the serving runtime {deployment.runtime!r} is not loaded in this worker")
    if what == "remove":
        runtime.remove(deployment.name, settings, ctx.log)
        with Session(ctx.engine) as session:
            session.execute(
                delete(MetricMinute).where(col(MetricMinute.deployment) == deployment.name)
            )
            session.execute(delete(Deployment).where(col(Deployment.id) == deployment.id))
            session.commit()
        route_changed(deployment.name)
        ctx.log(f"{deployment.name} removed")
        return {"removed": deployment.name}
    state = desired_state(deployment, settings)
    if state is None:
        ctx.log(f"{deployment.name} has nothing to serve")
        return {}
    ctx.log(f"bringing {deployment.name} to {_state_text(state)} on {runtime.name}")
    try:
        endpoints = runtime.apply(state, settings, ctx.log)
    except RuntimeFailed as exc:
        _failed(ctx, deployment, str(exc))
        raise TaskFailed(str(exc)) from None
    ctx.check_cancelled()
    if what == "deploy":
        _switch(ctx, deployment, endpoints, settings)
    else:
        _settled(ctx, deployment, endpoints, restored=what == "restore")
    return {"endpoints": endpoints}


def desired_state(deployment: Deployment, settings: Settings) -> DeploymentState | None:
    """What the runtime should run: what serves now, with what is pending brought up."""
    pending = deployment.pending or {}
    stable = pending.get("stable") or deployment.stable_version
    if stable is None:
        return None
    canary = pending.get("canary") or (None if "stable" in pending else deployment.canary_version)
    percent = int(pending.get("percent", deployment.canary_percent if canary else 0))
    # A new stable version keeps the one it replaces warm, for a rollback.
    previous = deployment.stable_version if "stable" in pending else deployment.previous_version
    return DeploymentState(
        name=deployment.name,
        environment=deployment.environment,
        owner=deployment.owner,
        stable=_spec(deployment, stable),
        canary=_spec(deployment, canary) if canary else None,
        canary_percent=percent if canary else 0,
        labels={"paved.dev/environment": deployment.environment},
        previous=_spec(deployment, previous) if previous and previous != stable else None,
    )


def _spec(deployment: Deployment, version: str) -> VersionSpec:
    serving = deployment.serving or {}
    replicas = serving.get("replicas") or {}
    return VersionSpec(
        model=deployment.model,
        version=version,
        model_uri=f"models:/{deployment.model}/{version}",
        resources=dict(serving.get("resources") or {}),
        replicas={"min": int(replicas.get("min", 1)), "max": int(replicas.get("max", 1))},
    )


def _state_text(state: DeploymentState) -> str:
    text = f"v{state.stable.version}"
    if state.canary is not None:
        text += f" with v{state.canary.version} as a {state.canary_percent}% canary"
    return text


def _load(ctx: TaskContext) -> Deployment:
    with Session(ctx.engine) as session:
        deployment = session.get(Deployment, int(ctx.params["deployment_id"]))
        if deployment is None:
            raise TaskFailed(f"deployment {ctx.params['deployment_id']} no longer exists")
        session.expunge(deployment)
        return deployment


def _acting_as(ctx: TaskContext) -> Identity | None:
    acting = ctx.params.get("acting_as")
    return Identity.from_session(acting) if acting else None


def _resource(ctx: TaskContext) -> Resource:
    saved = ctx.params["resource"]
    return Resource(
        ref=saved["ref"], kind=saved["kind"], owner=saved.get("owner"), facts=saved.get("facts", {})
    )


def _switch(
    ctx: TaskContext, deployment: Deployment, endpoints: dict[str, str], settings: Settings
) -> None:
    """The new versions answer: switch the router to them, decided and audited as the person
    who asked (the policy may have changed its mind since)."""
    identity = _acting_as(ctx)
    assert identity is not None, "a deploy is asked for by someone"
    pending = deployment.pending or {}
    reference = _reference(ctx, deployment, pending)

    def work(session: Session) -> None:
        live = session.get(Deployment, deployment.id)
        if live is None or live.pending != pending:
            raise Conflict(f"deployment {deployment.name} changed while its versions started")
        if "canary" in pending:
            live.canary_version = str(pending["canary"])
            live.canary_percent = int(pending.get("percent", 0))
            message = f"v{live.canary_version} takes {live.canary_percent}% as a canary"
            kind = "canary"
        else:
            if live.stable_version and live.stable_version != pending["stable"]:
                live.previous_version = live.stable_version
            live.stable_version = str(pending["stable"])
            live.canary_version = None
            live.canary_percent = 0
            message = f"v{live.stable_version} takes all traffic"
            kind = "deploy"
            if reference is not None:
                live.reference = reference
        live.endpoints = endpoints
        live.pending = None
        live.status = "serving"
        live.message = message
        live.updated_at = utcnow()
        session.add(live)
        record_event(session, live, kind, identity.ref, message)

    try:
        ctx.act(DEPLOYMENT_CREATE, identity, _resource(ctx), work)
    except PavedError as exc:
        _failed(ctx, deployment, exc.detail, audited=True)
        raise TaskFailed(exc.detail) from None
    route_changed(deployment.name)
    ctx.log(f"{deployment.name}: switched; {_describe(pending)} answers")


def _reference(
    ctx: TaskContext, deployment: Deployment, pending: dict[str, Any]
) -> dict[str, Any] | None:
    """The training data's feature distributions, for drift: the model's training dataset
    read from its project at the commit the version was trained from."""
    if "stable" not in pending or ctx.settings is None:
        return None
    try:
        with Session(ctx.engine) as session:
            facts = registry.model_facts(session, deployment.model, None, ctx.settings)
            project = _project_of(session, facts)
            if project is None or project.model is None:
                ctx.log("no drift reference: the model has no project in the catalog")
                return {}
            datasets = [
                catalog.get_entity(
                    session, parse_ref(ref, field="trainedOn", default_kind="dataset")
                )
                for ref in project.trained_on
            ]
        version = registry.get_model_version(ctx.settings, deployment.model, str(pending["stable"]))
        run = tracking_client(ctx.settings).get_run(version.run_id) if version.run_id else None
        commit = run.data.tags.get("mlflow.source.git.commit") if run else None
        for dataset in datasets:
            spec = dataset.body.get("spec", {})
            if str(spec.get("format", "")).lower() != "csv":
                continue
            data = read_project_file(project, str(spec.get("location")), revision=commit)
            references = references_from_csv(data)
            ctx.log(f"drift reference: {len(references)} features of {ref_of(dataset.body).text}")
            return references
    except (PavedError, FileNotFoundError, OSError, ValueError) as exc:
        ctx.log(f"no drift reference: {exc}", level="warning")
        return {}
    ctx.log("no drift reference: the model's training data is not a CSV file of its project")
    return {}


def _settled(
    ctx: TaskContext, deployment: Deployment, endpoints: dict[str, str], *, restored: bool
) -> None:
    with Session(ctx.engine) as session:
        live = session.get(Deployment, deployment.id)
        if live is None:
            return
        live.endpoints = endpoints
        if restored:
            live.status = "serving"
            live.message = "its model servers answer again"
            record_event(session, live, "restore", RESTORER, live.message)
            audit.append_event(
                session,
                actor=RESTORER,
                action="serving.deployment.restore",
                resource=f"deployment:{live.name}",
                allowed=True,
                outcome="succeeded",
                detail={"task": ctx.task_id, "endpoints": endpoints},
            )
        session.add(live)
        session.commit()
    route_changed(deployment.name)


def _failed(ctx: TaskContext, deployment: Deployment, why: str, *, audited: bool = False) -> None:
    """A deploy that did not come up: what served before still serves; the failure is
    recorded on the deployment, in its history and (once) in the audit log."""
    ctx.log(why, level="error")
    with Session(ctx.engine) as session:
        live = session.get(Deployment, deployment.id)
        if live is None:
            return
        pending = live.pending or {}
        live.pending = None
        live.status = "serving" if live.stable_version else "failed"
        still = f"; v{live.stable_version} still serves" if live.stable_version else ""
        live.message = f"{_describe(pending)} did not come up: {why}{still}"
        live.updated_at = utcnow()
        session.add(live)
        acting = _acting_as(ctx)
        record_event(session, live, "failed", acting.ref if acting else RESTORER, live.message)
        if not audited:
            audit.append_event(
                session,
                actor=acting.ref if acting else RESTORER,
                action=DEPLOYMENT_CREATE.name,
                resource=f"deployment:{live.name}",
                allowed=True,
                outcome="failed",
                detail={"task": ctx.task_id, "via": "task", "error": why[:500]},
            )
        session.commit()


def automatic_rollback(session: Session, name: str, reason: str) -> Deployment | None:
    """The canary's judge found it failing: send all traffic to stable, in the same
    transaction as its event and audit event. None when there is no canary any more."""
    deployment = session.exec(select(Deployment).where(col(Deployment.name) == name)).first()
    if deployment is None or deployment.canary_version is None:
        return None
    canary = deployment.canary_version
    rollback(session, deployment, actor=JUDGE, reason=reason)
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
    settle(session, deployment, by=None)
    return deployment


HANDLER = TaskHandler(TASK_KIND, run_apply, title="Serving change")


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

"""Deployments: asked for through the API, brought up by a runtime in a task, switched in one
transaction once the new versions answer, rolled back by a person or by the canary's judge.

What answers a deployment's requests changes only in a transaction that also records the
change (its event, and its audit event): a deploy whose servers do not start changes
nothing, so the previous versions keep serving.
"""

from __future__ import annotations

import weakref
from typing import Any, Protocol

from sqlalchemy import event
from sqlmodel import Session, col, select

from plugins.registry import service as registry
from plugins.serving.models import (
    Deployment,
    DeploymentEvent,
)
from plugins.serving.runtimes import SPLIT_BY_RUNTIME, ServingRuntime
from plugins.serving.targets import Target
from portal import (
    Conflict,
    Identity,
    InvalidInput,
    NotFound,
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
    elif deployment.previous_version is not None and (
        deployment.previous_version in deployment.endpoints
        or SPLIT_BY_RUNTIME in deployment.endpoints  # the runtime brings it back itself
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

"""The task that changes what runs for a deployment (``serving.apply``): bring the versions up
through the runtime, then switch the router to them in one transaction, decided and audited
as the person who asked; or stop them. A runtime that fails leaves what served before."""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete
from sqlmodel import Session, col

from catalog import service as catalog
from catalog.refs import parse_ref, ref_of
from plugins.registry import service as registry
from plugins.serving import service, targets
from plugins.serving.actions import DEPLOYMENT_CREATE
from plugins.serving.drift import references_from_csv
from plugins.serving.models import Deployment, MetricMinute
from plugins.serving.runtimes import DeploymentState, RuntimeFailed, VersionSpec
from plugins.training.projects import read_project_file
from portal import (
    Conflict,
    Identity,
    PavedError,
    Resource,
    Settings,
    TaskContext,
    TaskFailed,
    TaskHandler,
    audit,
)
from portal.db import utcnow
from portal.tracking import tracking_client


def run_apply(ctx: TaskContext) -> dict[str, Any]:
    """Bring a deployment's runtime to what it should serve, then switch in one transaction."""
    settings = ctx.settings
    assert settings is not None, "serving needs the portal's settings"
    what = str(ctx.params["what"])
    deployment = _load(ctx)
    runtimes = service.available_runtimes(ctx.plugins, settings)
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
        service.route_changed(deployment.name)
        ctx.log(f"{deployment.name} removed")
        return {"removed": deployment.name}
    try:
        state = desired_state(deployment, settings)
        if state is None:
            ctx.log(f"{deployment.name} has nothing to serve")
            return {}
        ctx.log(f"bringing {deployment.name} to {_state_text(state)} on {runtime.name}")
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
    """What the runtime should run: what serves now, with what is pending brought up.
    Raises ``RuntimeFailed`` when MLflow cannot say where a version's files are."""
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
        stable=_spec(deployment, stable, settings),
        canary=_spec(deployment, canary, settings) if canary else None,
        canary_percent=percent if canary else 0,
        labels={"paved.dev/environment": deployment.environment},
        previous=_previous(deployment, previous, settings) if previous != stable else None,
    )


def _previous(
    deployment: Deployment, version: str | None, settings: Settings
) -> VersionSpec | None:
    """The version kept for a rollback, when MLflow still has it: a version deleted from
    the registry since is not kept, and stops nothing else."""
    if version is None:
        return None
    try:
        return _spec(deployment, version, settings)
    except RuntimeFailed:
        return None


def _spec(deployment: Deployment, version: str, settings: Settings) -> VersionSpec:
    serving = deployment.serving or {}
    replicas = serving.get("replicas") or {}
    return VersionSpec(
        model=deployment.model,
        version=version,
        model_uri=f"models:/{deployment.model}/{version}",
        source=_source(deployment.model, version, settings),
        resources=dict(serving.get("resources") or {}),
        replicas={"min": int(replicas.get("min", 1)), "max": int(replicas.get("max", 1))},
    )


def _source(model: str, version: str, settings: Settings) -> str:
    """Where MLflow keeps the files of ``model`` ``version`` (its download URI)."""
    from mlflow.exceptions import MlflowException

    try:
        return str(tracking_client(settings).get_model_version_download_uri(model, version))
    except MlflowException as exc:
        raise RuntimeFailed(
            f"MLflow cannot say where the files of {model} v{version} are: {exc.message}"
        ) from None


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
        service.record_event(session, live, kind, identity.ref, message)

    try:
        ctx.act(DEPLOYMENT_CREATE, identity, _resource(ctx), work)
    except PavedError as exc:
        _failed(ctx, deployment, exc.detail, audited=True)
        raise TaskFailed(exc.detail) from None
    service.route_changed(deployment.name)
    ctx.log(f"{deployment.name}: switched; {service.describe_pending(pending)} answers")


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
            project = targets.project_of(session, facts)
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
            service.record_event(session, live, "restore", service.RESTORER, live.message)
            audit.append_event(
                session,
                actor=service.RESTORER,
                action="serving.deployment.restore",
                resource=f"deployment:{live.name}",
                allowed=True,
                outcome="succeeded",
                detail={"task": ctx.task_id, "endpoints": endpoints},
            )
        session.add(live)
        session.commit()
    service.route_changed(deployment.name)


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
        live.message = f"{service.describe_pending(pending)} did not come up: {why}{still}"
        live.updated_at = utcnow()
        session.add(live)
        acting = _acting_as(ctx)
        service.record_event(
            session, live, "failed", acting.ref if acting else service.RESTORER, live.message
        )
        if not audited:
            audit.append_event(
                session,
                actor=acting.ref if acting else service.RESTORER,
                action=DEPLOYMENT_CREATE.name,
                resource=f"deployment:{live.name}",
                allowed=True,
                outcome="failed",
                detail={"task": ctx.task_id, "via": "task", "error": why[:500]},
            )
        session.commit()


HANDLER = TaskHandler(service.TASK_KIND, run_apply, title="Serving change")

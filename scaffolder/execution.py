"""Running a template as a task (kind ``scaffolder.run``): each step's start and end in the
task's log, its output kept so a retry starts where the run stopped, every line masked of
secrets, and work outside the workspace done as the person who started the run."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

from sqlalchemy import update
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session, col

from portal import TaskCancelled, TaskContext, TaskFailed, TaskHandler, tasks
from portal.actions import Action
from portal.auth.identity import Identity
from portal.errors import ConfigurationError, InvalidInput
from portal.gate import Resource
from portal.plugins import Plugins
from scaffolder import runner, secrets, service
from scaffolder.models import ScaffolderRun
from scaffolder.runner import StepEvent
from scaffolder.service import TASK_KIND
from scaffolder.steps import StepAction, StepContext, registry
from scaffolder.steps.builtin import BUILT_IN_ACTIONS
from scaffolder.steps.catalog import CATALOG_REGISTER, CATALOG_WRITE
from scaffolder.steps.publish import PUBLISH_ALIASES, PUBLISH_GIT

ACTIONS_HOOK = "paved_scaffolder_actions"
BUILT_IN = [*BUILT_IN_ACTIONS, CATALOG_WRITE, CATALOG_REGISTER, PUBLISH_GIT, *PUBLISH_ALIASES]

log = logging.getLogger("paved.scaffolder")


def actions_of(plugins: Plugins | None) -> Mapping[str, StepAction]:
    """The actions templates may use with ``plugins``, by id: collected once (at start-up,
    or on a worker's first run), not on every request or run. Without plugins (a worker
    built without them), the built-in ones."""
    if plugins is None:
        return registry(BUILT_IN)
    return plugins.build_once(ACTIONS_HOOK, lambda: collect_actions(plugins))


def collect_actions(plugins: Plugins) -> dict[str, StepAction]:
    """The actions built in, and those plugins add (an id already taken degrades the
    plugin that came second)."""
    found = registry(BUILT_IN)
    for contribution in plugins.collect(ACTIONS_HOOK, StepAction):
        action = contribution.item
        if action.id in found:
            plugins.degrade(contribution.plugin, f"scaffolder action {action.id} is already taken")
            continue
        found[action.id] = action
    return found


def run_task(ctx: TaskContext) -> dict[str, Any]:
    """Run the template, then remove the workspaces of the runs no retry needs any more: a
    worker has no timer, so each run's end sweeps."""
    try:
        return run_template(ctx, actions_of(ctx.plugins))
    finally:
        _sweep_workspaces(ctx)


HANDLER = TaskHandler(TASK_KIND, run_task, title="Run a software template")


def run_template(ctx: TaskContext, actions: Mapping[str, StepAction]) -> dict[str, Any]:
    settings = ctx.settings
    if settings is None:
        raise ConfigurationError("a scaffolder run needs the portal's settings")
    with Session(ctx.engine) as session:
        run = session.get(ScaffolderRun, ctx.task_id)
        if run is None:
            raise TaskFailed(f"task {ctx.task_id} has no scaffolder run")
        session.expunge(run)
    try:
        hidden = secrets.unseal(settings, run.sealed_secrets)
    except InvalidInput as exc:
        raise TaskFailed(exc.detail) from None
    masker = secrets.Masker(hidden)
    identity = Identity.from_session(run.acting_as)
    current: dict[str, str | None] = {"step": None}
    steps_kept: dict[str, Any] = dict(run.steps)

    def write(message: str) -> None:
        ctx.log(masker.text(message), step=current["step"])

    def on_step(event: StepEvent) -> None:
        current["step"] = event.step_id
        level = "error" if event.status == "failed" else "info"
        message = event.message or event.status
        ctx.log(masker.text(message), level=level, step=event.step_id, step_status=event.status)
        kept: dict[str, Any] = {"status": event.status}
        if event.output is not None:
            kept["output"] = masker.value(event.output)
        if event.problems:
            kept["errors"] = masker.value([problem.as_dict() for problem in event.problems])
        steps_kept[event.step_id] = kept
        _save(ctx, steps=dict(steps_kept))

    def act(action: Action, resource: Resource | None, work: Callable[[Session], Any]) -> Any:
        return ctx.act(action, identity, resource, work)

    workspace = service.workspace_of(settings, ctx.task_id)
    has_workspace = workspace.is_dir()
    workspace.mkdir(parents=True, exist_ok=True)
    context = StepContext(
        workspace=workspace,
        log=write,
        files=service.open_template_files(run.files_base, settings),
        settings=settings,
        act=act,
        user_ref=identity.ref,
        task_id=ctx.task_id,
    )
    spec = run.spec
    finished = {
        step_id: kept.get("output") or {}
        for step_id, kept in steps_kept.items()
        if kept.get("status") == "completed"
    }
    # A workspace removed since (the run was cancelled, or failed long ago) took the files
    # of the steps that only work in it: those run again, the others are not repeated.
    in_workspace = set() if has_workspace else _workspace_only_steps(spec, actions)
    done = {step_id: output for step_id, output in finished.items() if step_id not in in_workspace}
    if done:
        write(f"Retrying: {len(done)} finished step(s) are not run again")
    if len(done) < len(finished):
        again = len(finished) - len(done)
        write(f"Its workspace was removed: {again} finished step(s) that work in it run again")
    # A form's secret fields are still parameters to the steps (masked wherever shown).
    values = {**hidden, **spec.get("parameters", {})}
    try:
        result = runner.run(
            # The steps and output alone: the values were checked when the run was started.
            {"spec": {"steps": spec.get("steps") or [], "output": spec.get("output") or {}}},
            values,
            actions=actions,
            context=context,
            user=spec.get("user") or {},
            secrets=hidden,
            done=done,
            on_step=on_step,
            before_step=ctx.check_cancelled,
        )
    except InvalidInput as exc:
        raise TaskFailed(masker.text(exc.detail)) from None
    except TaskCancelled:
        # Someone cancelled the run, not its worker stopping (it goes back to the queue).
        if _is_cancel_requested(ctx):
            service.remove_workspace(settings, ctx.task_id)
        raise
    output = masker.value(result.output)
    _save(ctx, output=output, sealed_secrets=None)
    ctx.log("Run completed", step_status="completed")
    service.remove_workspace(settings, ctx.task_id)
    return {"output": output}


def _workspace_only_steps(spec: Mapping[str, Any], actions: Mapping[str, StepAction]) -> set[str]:
    """The steps whose action changes nothing outside the workspace (those a dry run
    runs)."""
    return {
        runner.step_id_of(step, index)
        for index, step in enumerate(spec.get("steps") or [])
        if (action := actions.get(str(step.get("action")))) is not None and action.supports_dry_run
    }


def _is_cancel_requested(ctx: TaskContext) -> bool:
    """Whether someone asked to cancel the run (``ctx.is_cancel_requested`` is also true
    when the worker stops, and the run goes back to the queue with its workspace)."""
    with Session(ctx.engine) as session:
        return tasks.get_task(session, ctx.task_id).cancel_requested


def _sweep_workspaces(ctx: TaskContext) -> None:
    if ctx.settings is None:
        return
    try:
        with Session(ctx.engine) as session:
            service.sweep_workspaces(session, settings=ctx.settings)
    except SQLAlchemyError:
        # The run's own outcome stands; the next run's end sweeps again.
        log.warning("could not sweep the scaffolder's workspaces", exc_info=True)


def _save(ctx: TaskContext, **values: Any) -> None:
    with Session(ctx.engine) as session:
        session.execute(
            update(ScaffolderRun).where(col(ScaffolderRun.task_id) == ctx.task_id).values(values)
        )
        session.commit()

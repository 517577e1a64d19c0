"""Running a template as a task (kind ``scaffolder.run``): each step's start and end in the
task's log, its output kept so a retry starts where the run stopped, every line masked of
secrets, and work outside the workspace done as the person who started the run."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from typing import Any

from sqlalchemy import update
from sqlmodel import Session, col

from portal import TaskContext, TaskFailed, TaskHandler
from portal.actions import Action
from portal.auth.identity import Identity
from portal.errors import ConfigurationError, InvalidInput
from portal.gate import Resource
from portal.plugins import Plugins
from scaffolder import runner, secrets
from scaffolder.models import ScaffolderRun
from scaffolder.runner import StepEvent
from scaffolder.service import TASK_KIND, template_files, workspace_of
from scaffolder.steps import StepAction, StepContext, registry
from scaffolder.steps.builtin import BUILT_IN_ACTIONS
from scaffolder.steps.catalog import CATALOG_REGISTER, CATALOG_WRITE
from scaffolder.steps.publish import PUBLISH_ALIASES, PUBLISH_GIT

ACTIONS_HOOK = "paved_scaffolder_actions"
BUILT_IN = [*BUILT_IN_ACTIONS, CATALOG_WRITE, CATALOG_REGISTER, PUBLISH_GIT, *PUBLISH_ALIASES]


def available_actions(plugins: Plugins | None) -> dict[str, StepAction]:
    """The actions templates may use: built in, and those plugins add (an id already
    taken degrades the plugin that came second)."""
    found = registry(BUILT_IN)
    if plugins is None:
        return found
    for contribution in plugins.collect(ACTIONS_HOOK, StepAction):
        action = contribution.item
        if action.id in found:
            plugins.degrade(contribution.plugin, f"scaffolder action {action.id} is already taken")
            continue
        found[action.id] = action
    return found


def run_task(ctx: TaskContext) -> dict[str, Any]:
    return run_template(ctx, available_actions(ctx.plugins))


HANDLER = TaskHandler(TASK_KIND, run_task, title="Run a software template")


def run_template(ctx: TaskContext, actions: dict[str, StepAction]) -> dict[str, Any]:
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

    def log(message: str) -> None:
        ctx.log(masker.text(message), step=current["step"])

    def on_step(event: StepEvent) -> None:
        current["step"] = event.step_id
        level = "error" if event.status == "failed" else "info"
        message = event.message or event.status
        ctx.log(masker.text(message), level=level, step=event.step_id, step_status=event.status)
        kept: dict[str, Any] = {"status": event.status}
        if event.output is not None:
            kept["output"] = masker.value(event.output)
        steps_kept[event.step_id] = kept
        _save(ctx, steps=dict(steps_kept))

    def act(action: Action, resource: Resource | None, work: Callable[[Session], Any]) -> Any:
        return ctx.act(action, identity, resource, work)

    workspace = workspace_of(settings, ctx.task_id)
    workspace.mkdir(parents=True, exist_ok=True)
    context = StepContext(
        workspace=workspace,
        log=log,
        files=template_files(run.files_base, settings),
        settings=settings,
        act=act,
        user_ref=identity.ref,
        task_id=ctx.task_id,
    )
    spec = run.spec
    done = {
        step_id: kept.get("output") or {}
        for step_id, kept in steps_kept.items()
        if kept.get("status") == "completed"
    }
    if done:
        log(f"Retrying: {len(done)} finished step(s) are not run again")
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
    output = masker.value(result.output)
    _save(ctx, output=output, sealed_secrets=None)
    ctx.log("Run completed", step_status="completed")
    shutil.rmtree(workspace, ignore_errors=True)
    return {"output": output}


def _save(ctx: TaskContext, **values: Any) -> None:
    with Session(ctx.engine) as session:
        session.execute(
            update(ScaffolderRun).where(col(ScaffolderRun.task_id) == ctx.task_id).values(values)
        )
        session.commit()

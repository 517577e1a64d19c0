"""Template runs as persisted tasks: started (values checked, secrets sealed), listed,
read with their events, cancelled and retried from the step that failed; their workspaces
removed once no retry needs them."""

from __future__ import annotations

import shutil
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import func
from sqlmodel import Session, col, select

from catalog import service as catalog
from catalog.models import CatalogEntity
from catalog.readers import allowed_roots
from catalog.refs import EntityRef, parse_ref, ref_of
from portal import tasks
from portal.auth.identity import Identity
from portal.db import as_utc, utcnow
from portal.errors import InvalidInput, NotFound
from portal.gate import Authority, Resource
from portal.models import Task, TaskLog, TaskStatus
from portal.settings import Settings
from scaffolder import actions, parameters, runner, secrets, templates
from scaffolder.models import ScaffolderRun
from scaffolder.steps import FolderFiles, NoFiles, TemplateFiles

TASK_KIND = "scaffolder.run"
API_VERSION = "scaffolder.backstage.io/v1beta3"

# The task's status as Backstage names it.
STATUS_NAMES = {
    TaskStatus.QUEUED: "open",
    TaskStatus.RUNNING: "processing",
    TaskStatus.SUCCEEDED: "completed",
    TaskStatus.FAILED: "failed",
    TaskStatus.CANCELLED: "cancelled",
}
STATUS_OF_NAME = {name: status for status, name in STATUS_NAMES.items()}


@dataclass(frozen=True)
class RunView:
    """A run as the API and pages show it: its task and what the scaffolder keeps of it."""

    task: Task
    run: ScaffolderRun

    @property
    def status(self) -> str:
        return STATUS_NAMES[TaskStatus(self.task.status)]


def parse_template_ref(text: str, *, field: str = "templateRef") -> EntityRef:
    """``template:default/name`` (or ``default/name``, or ``name``): a Template's ref."""
    ref = parse_ref(text, default_kind="template", field=field)
    if ref.kind.lower() != templates.TEMPLATE_KIND:
        raise InvalidInput.for_field(
            field, f"{text!r} names a {ref.kind}, not a Template", "template:<namespace>/<name>"
        )
    return ref


@dataclass(frozen=True)
class RunRequest:
    """A run someone asks of a template: the template, as the catalog holds it (with where
    it was read from), and the values given for its form."""

    template: CatalogEntity
    values: dict[str, Any]


def find_target_owner(template: Mapping[str, Any], values: Mapping[str, Any]) -> str | None:
    """The owner the new project will have: the value (or else the default) of the form's
    owner field (an ``OwnerPicker``, or a field named ``owner``), also one that the values
    bring in through dependencies, as a full ref; None if the form has none."""
    for name, field in parameters.fields_shown(template, values):
        if name != "owner" and field.get("ui:field") not in parameters.OWNER_PICKERS:
            continue
        value = values.get(name, field.get("default"))
        if isinstance(value, str) and value.strip():
            return parse_ref(value.strip(), default_kind="group", field=name).key
    return None


def describe_run(asked: RunRequest) -> Resource:
    """What ``scaffolder.template.run`` is about, as the policy sees it: the template, the
    values (secrets left out) and the owner the new project would have."""
    template = asked.template.body
    owner = find_target_owner(template, asked.values)
    return _describe_template_run(asked.template.ref, template, asked.values, owner)


def _describe_template_run(
    ref: str, template: Mapping[str, Any], values: Mapping[str, Any], owner: str | None
) -> Resource:
    kept, _ = secrets.split(template, values, {})
    spec = template.get("spec") or {}
    return Resource(
        ref=ref,
        kind="Template",
        facts={
            "template": {"type": spec.get("type"), "owner": spec.get("owner")},
            "values": kept,
            "target_owner": owner,
        },
    )


def list_owner_choices(
    session: Session,
    ref: EntityRef,
    template: Mapping[str, Any],
    *,
    by: Identity,
    authority: Authority,
) -> list[str]:
    """The groups ``by`` may create a project from template ``ref`` for, as its form's owner
    pickers offer them: their own groups, and each other group of the catalog the policy
    lets them create for (an admin's: all of them)."""
    own = list(by.groups)
    others = [
        ref_text
        for group in catalog.entities_of_kind(session, "group")
        if (ref_text := str(ref_of(group.body))) not in own
    ]
    allowed = [
        group
        for group in others
        if authority.decide(
            actions.TEMPLATE_RUN, by, _describe_template_run(ref.key, template, {}, group)
        ).allow
    ]
    return sorted(dict.fromkeys([*own, *allowed]))


def start_run(
    session: Session,
    asked: RunRequest,
    *,
    sent_secrets: Mapping[str, str] | None = None,
    by: Identity,
    settings: Settings,
    known_actions: Collection[str],
) -> RunView:
    """Check the values asked against the template's form, and its steps' actions against
    those known, and queue its run; 422 naming each field that does not fit (nothing is
    queued)."""
    entity = asked.template
    template = dict(entity.body)
    values = runner.validate_values(template, asked.values)
    runner.check_actions(template.get("spec") or {}, known_actions)
    kept, hidden = secrets.split(template, values, sent_secrets or {})
    spec = template.get("spec") or {}
    files_base = _find_files_base(entity.source)
    task_spec = {
        "apiVersion": template.get("apiVersion", API_VERSION),
        "parameters": kept,
        "steps": list(spec.get("steps") or []),
        "output": spec.get("output") or {},
        "templateInfo": {
            "entityRef": entity.ref,
            "baseUrl": files_base.as_uri() + "/" if files_base else None,
            "entity": {"metadata": template.get("metadata") or {}},
        },
        "user": {"ref": by.ref, "entity": find_user_entity(session, by)},
    }
    task = tasks.enqueue(
        session,
        TASK_KIND,
        title=f"{templates.title_of(template)} for {by.display_name}",
        params={"templateRef": entity.ref},
        created_by=by.ref,
    )
    assert task.id is not None
    run = ScaffolderRun(
        task_id=task.id,
        template_ref=entity.ref,
        spec=task_spec,
        acting_as=by.to_session(),
        files_base=str(files_base) if files_base else None,
        sealed_secrets=secrets.seal(settings, hidden),
    )
    session.add(run)
    session.flush()
    return RunView(task, run)


def _find_files_base(source: str) -> Path | None:
    """The folder of a template read from a file: where its skeletons are."""
    type_, _, target = source.partition(":")
    return Path(target).parent if type_ == "file" else None


def find_user_entity(session: Session, by: Identity) -> dict[str, Any]:
    """The User entity of whoever runs the template (``${{ user.entity.metadata.name }}``);
    a minimal one if the catalog has none."""
    try:
        return dict(catalog.get_entity(session, parse_ref(by.ref, default_kind="user")).body)
    except (NotFound, InvalidInput):
        name = by.ref.rsplit("/", 1)[-1]
        return {
            "apiVersion": "backstage.io/v1alpha1",
            "kind": "User",
            "metadata": {"name": name},
            "spec": {"profile": {"displayName": by.display_name}},
        }


def get_run(session: Session, task_id: int) -> RunView:
    run = session.get(ScaffolderRun, task_id)
    if run is None:
        raise NotFound(f"there is no scaffolder task {task_id}")
    return RunView(tasks.get_task(session, task_id), run)


def parse_task_id(text: str) -> int:
    """Backstage's task ids are strings; Paved's are numbers."""
    if not text.isdigit():
        raise InvalidInput.for_field("taskId", f"{text!r} is not a task id", "a number, e.g. 12")
    return int(text)


@dataclass(frozen=True)
class RunPage:
    runs: list[RunView]
    total: int


def list_runs(
    session: Session,
    *,
    created_by: str | None = None,
    status: str | None = None,
    limit: int = 50,
    offset: int = 0,
    newest_first: bool = True,
) -> RunPage:
    """Runs, newest first unless asked otherwise, of one person or with one status."""
    query = select(Task, ScaffolderRun).join(
        ScaffolderRun, col(ScaffolderRun.task_id) == col(Task.id)
    )
    if created_by:
        query = query.where(col(Task.created_by) == created_by)
    if status:
        if status not in STATUS_OF_NAME:
            raise InvalidInput.for_field(
                "status", f"{status!r} is not a task status", ", ".join(STATUS_OF_NAME)
            )
        query = query.where(col(Task.status) == STATUS_OF_NAME[status])
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    order = col(Task.id).desc() if newest_first else col(Task.id)
    rows = session.exec(query.order_by(order).offset(offset).limit(limit)).all()
    return RunPage([RunView(task, run) for task, run in rows], total)


def cancel_run(session: Session, task_id: int, *, by: Identity, settings: Settings) -> RunView:
    """Cancel a waiting run now (its workspace, if a failed attempt left one, goes with
    it); ask a running one to stop before its next step (its runner removes the workspace
    as it stops)."""
    get_run(session, task_id)
    task = tasks.request_cancel(session, task_id, by=by.ref)
    if task.status == TaskStatus.CANCELLED:
        remove_workspace(settings, task_id)
    return get_run(session, task_id)


def retry_run(
    session: Session,
    task_id: int,
    *,
    sent_secrets: Mapping[str, str] | None,
    by: Identity,
    settings: Settings,
) -> RunView:
    """Queue a failed (or cancelled) run again: it starts at the step that did not finish,
    in the same workspace (if that was removed, the finished steps that only work in it run
    again). Secrets sent again are added to the sealed ones (replacing those of the same
    name); if those cannot be opened any more (the secret key changed), the secrets sent are
    all the run has."""
    view = get_run(session, task_id)
    tasks.requeue(session, task_id, by=by.ref)
    if sent_secrets:
        try:
            kept = secrets.unseal(settings, view.run.sealed_secrets)
        except InvalidInput:
            kept = {}
        view.run.sealed_secrets = secrets.seal(settings, {**kept, **sent_secrets})
        session.add(view.run)
        session.flush()
    return get_run(session, task_id)


def list_events(session: Session, task_id: int, *, after: int = 0) -> list[TaskLog]:
    get_run(session, task_id)
    return tasks.list_log_lines(session, task_id, after=after)


def open_template_files(files_base: str | None, settings: Settings) -> TemplateFiles:
    """The files of a template whose template.yaml is in ``files_base`` (None: read from a
    URL, so it has none Paved can fetch), under the catalog's rules for reading files."""
    if files_base is None:
        return NoFiles()
    return FolderFiles(Path(files_base), tuple(allowed_roots(settings.catalog)))


def template_of(session: Session, ref: EntityRef) -> tuple[dict[str, Any], str | None]:
    """A Template entity and the folder of its files."""
    entity = templates.get_template_entity(session, ref)
    base = _find_files_base(entity.source)
    return dict(entity.body), str(base) if base else None


def workspace_of(settings: Settings, task_id: int) -> Path:
    """Where run ``task_id`` renders its files: kept while a retry may need them (the run
    runs or waits, or it failed within ``scaffolder.failed_workspace_retention_hours``)."""
    return _workspaces(settings) / str(task_id)


def _workspaces(settings: Settings) -> Path:
    return settings.workspace_root / "tasks"


def remove_workspace(settings: Settings, task_id: int) -> None:
    shutil.rmtree(workspace_of(settings, task_id), ignore_errors=True)


def sweep_workspaces(
    session: Session, *, settings: Settings, now: datetime | None = None
) -> list[int]:
    """Remove the workspaces no retry will need: those of runs that succeeded or were
    cancelled, and of runs that failed longer ago than
    ``scaffolder.failed_workspace_retention_hours``. Returns the ids of the runs whose
    workspace was removed (a folder that names no run is left alone)."""
    folder = _workspaces(settings)
    names = [path.name for path in folder.iterdir()] if folder.is_dir() else []
    ids = [int(name) for name in names if name.isdigit()]
    if not ids:
        return []  # nothing to ask the database about
    retention = timedelta(hours=settings.scaffolder.failed_workspace_retention_hours)
    failed_since = (now or utcnow()) - retention
    runs = session.exec(
        select(Task)
        .join(ScaffolderRun, col(ScaffolderRun.task_id) == col(Task.id))
        .where(col(Task.id).in_(ids))
    ).all()
    removed = []
    for task in runs:
        if task.id is not None and not _may_need_workspace(task, failed_since=failed_since):
            remove_workspace(settings, task.id)
            removed.append(task.id)
    return sorted(removed)


def _may_need_workspace(task: Task, *, failed_since: datetime) -> bool:
    """Whether a run's workspace may still serve: it waits or runs, or it failed since
    ``failed_since`` (a retry picks up there)."""
    status = TaskStatus(task.status)
    if status == TaskStatus.FAILED:
        return task.finished_at is None or as_utc(task.finished_at) >= failed_since
    return not status.is_finished

"""Dry runs: a template rendered into a scratch workspace with nothing changed elsewhere,
answered with the files it made, its log and its output (Backstage's ``/v2/dry-run``)."""

from __future__ import annotations

import base64
import binascii
import os
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from portal.errors import InvalidInput
from portal.settings import Settings
from scaffolder import secrets
from scaffolder.runner import StepEvent, run, step_id_of
from scaffolder.steps import InlineFiles, StepAction, StepContext, TemplateFiles


@dataclass(frozen=True)
class DryRun:
    log: list[dict[str, Any]]
    files: list[dict[str, Any]]  # {path, base64Content, content, executable}
    output: dict[str, Any]
    steps: list[dict[str, Any]]


def read_inline_files(contents: Sequence[Mapping[str, Any]]) -> InlineFiles:
    """A dry run's ``directoryContents``: each path with its content in base64."""
    files: dict[str, bytes] = {}
    for index, item in enumerate(contents):
        where = f"directoryContents[{index}]"
        path = str(item.get("path") or "")
        if not path or path.startswith("/") or ".." in Path(path).parts:
            raise InvalidInput.for_field(
                f"{where}.path", f"{path!r} is not a path inside the template", "a relative path"
            )
        try:
            files[path.removeprefix("./")] = base64.b64decode(
                str(item.get("base64Content") or ""), validate=True
            )
        except (binascii.Error, ValueError):
            raise InvalidInput.for_field(
                f"{where}.base64Content", "not base64", "the file's content in base64"
            ) from None
    return InlineFiles(files)


def dry_run(
    template: Mapping[str, Any],
    values: Mapping[str, Any],
    *,
    sent_secrets: Mapping[str, str],
    files: TemplateFiles,
    actions: Mapping[str, StepAction],
    user: Mapping[str, Any],
    settings: Settings,
) -> DryRun:
    """Run ``template`` in a scratch folder; actions that would change anything outside it
    are skipped and say so. Raises InvalidInput naming the field or step that failed."""
    _, hidden = secrets.split(template, values, sent_secrets)
    masker = secrets.Masker(hidden)
    log: list[dict[str, Any]] = []
    current: dict[str, str | None] = {"step": None}

    def write(message: str) -> None:
        body: dict[str, Any] = {"message": masker.text(message)}
        if current["step"]:
            body["stepId"] = current["step"]
        log.append({"body": body})

    def on_step(event: StepEvent) -> None:
        current["step"] = event.step_id
        body = {"message": masker.text(event.message or event.status)}
        log.append({"body": {**body, "stepId": event.step_id, "status": event.status}})

    with tempfile.TemporaryDirectory(prefix="paved-dry-run-") as scratch:
        workspace = Path(scratch)
        context = StepContext(workspace=workspace, log=write, files=files, is_dry_run=True)
        result = run(
            template,
            values,
            actions=actions,
            context=context,
            user=user,
            secrets=hidden,
            on_step=on_step,
        )
        made = _list_tree(workspace, settings.scaffolder.max_files)
    steps = (template.get("spec") or {}).get("steps") or []
    return DryRun(
        log=log,
        files=made,
        output=masker.value(result.output),
        steps=[
            {
                **step,
                "id": step_id_of(step, index),
                "name": step.get("name") or step_id_of(step, index),
            }
            for index, step in enumerate(steps)
        ],
    )


def _list_tree(workspace: Path, max_files: int) -> list[dict[str, Any]]:
    """Every file the run made, with its content (a link is not followed)."""
    found: list[dict[str, Any]] = []
    for path in sorted(workspace.rglob("*")):
        if not path.is_file() or path.is_symlink():
            continue
        if len(found) == max_files:
            raise InvalidInput.for_field(
                "template", f"the run made more than {max_files:,} files", "fewer files"
            )
        content = path.read_bytes()
        found.append(
            {
                "path": path.relative_to(workspace).as_posix(),
                # Exact in base64, as Backstage answers; as text too, as its schema asks.
                "base64Content": base64.b64encode(content).decode(),
                "content": content.decode(errors="replace"),
                "executable": os.access(path, os.X_OK),
            }
        )
    return found

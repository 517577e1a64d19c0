"""The actions every Paved scaffolder has, with Backstage's ids and inputs."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from portal.errors import InvalidInput
from scaffolder.steps import StepAction, StepContext

_FILES = {"type": "array", "minItems": 1}


def _log(context: StepContext, given: dict[str, Any]) -> dict[str, Any]:
    if given.get("message") is not None:
        message = given["message"]
        context.log(message if isinstance(message, str) else json.dumps(message, default=str))
    listing = given.get("listWorkspace")
    if listing:
        root = context.workspace.resolve()
        for path in sorted(root.rglob("*")):
            if path.is_file():
                shown = str(path.relative_to(root))
                if listing == "with-contents":
                    shown += ":\n" + path.read_text(errors="replace")
                context.log(shown)
    return {}


def _rename(context: StepContext, given: dict[str, Any]) -> dict[str, Any]:
    """Every path is checked before anything moves (a run that fails is thrown away)."""
    moves = [
        (
            f"input.files[{index}]",
            move,
            context.path(move["from"], field=f"input.files[{index}].from"),
            context.path(move["to"], field=f"input.files[{index}].to"),
        )
        for index, move in enumerate(given["files"])
    ]
    for where, move, source, target in moves:
        if not source.exists():
            raise _missing(f"{where}.from", move["from"])
        if target.exists() and not move.get("overwrite", False):
            raise _exists(f"{where}.to", move["to"])
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(source, target)
        context.log(f"renamed {move['from']} to {move['to']}")
    return {}


def _delete(context: StepContext, given: dict[str, Any]) -> dict[str, Any]:
    """Every pattern is checked, and every match found, before anything is deleted."""
    root = context.workspace.resolve()
    doomed: dict[Path, None] = {}
    for index, pattern in enumerate(given["files"]):
        where = f"input.files[{index}]"
        context.path(pattern, field=where)  # no pattern leading out
        if ".." in Path(pattern).parts:  # "**/.." would match the workspace's own parent
            raise InvalidInput.for_field(
                where, f"{pattern!r} leads out of the workspace", "a path inside the workspace"
            )
        for path in root.glob(pattern):
            doomed[context.path(str(path.relative_to(root)), field=where)] = None
    for path in sorted(doomed, reverse=True):  # a folder's files before the folder
        if not path.exists():
            continue  # inside a folder deleted already
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink()
        context.log(f"deleted {path.relative_to(root)}")
    return {}


def _missing(field: str, path: str) -> InvalidInput:
    return InvalidInput.for_field(field, f"{path!r} is not in the workspace", "an existing file")


def _exists(field: str, path: str) -> InvalidInput:
    return InvalidInput.for_field(
        field, f"{path!r} exists already", "a new path, or overwrite: true"
    )


DEBUG_LOG = StepAction(
    "debug:log",
    "Write a message into the run's log, and list the workspace if asked.",
    _log,
    {
        "type": "object",
        "properties": {
            "message": {"title": "The message to log"},
            "listWorkspace": {
                "title": "List the workspace: true (names) or with-contents",
                "enum": [True, False, "with-filenames", "with-contents"],
            },
        },
    },
    examples=({"description": "Log a message", "example": "message: Hello ${{ user.ref }}"},),
)
FS_RENAME = StepAction(
    "fs:rename",
    "Rename or move files and folders within the workspace.",
    _rename,
    {
        "type": "object",
        "required": ["files"],
        "properties": {
            "files": {
                **_FILES,
                "title": "The files to move: each with from, to and overwrite",
                "items": {
                    "type": "object",
                    "required": ["from", "to"],
                    "properties": {
                        "from": {"type": "string", "minLength": 1, "title": "a workspace path"},
                        "to": {"type": "string", "minLength": 1, "title": "a workspace path"},
                        "overwrite": {"type": "boolean", "title": "true or false"},
                    },
                },
            }
        },
    },
)
FS_DELETE = StepAction(
    "fs:delete",
    "Delete files and folders (glob patterns) from the workspace.",
    _delete,
    {
        "type": "object",
        "required": ["files"],
        "properties": {
            "files": {
                **_FILES,
                "title": "Workspace paths or glob patterns, e.g. docs/**/*.draft.md",
                "items": {"type": "string", "minLength": 1, "title": "a workspace path"},
            }
        },
    },
)

BUILT_IN_ACTIONS = [DEBUG_LOG, FS_RENAME, FS_DELETE]

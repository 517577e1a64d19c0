"""The actions every Paved scaffolder has, with Backstage's ids and inputs."""

from __future__ import annotations

import fnmatch
import json
import shutil
from collections.abc import Iterable
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


def _fetch_plain(context: StepContext, given: dict[str, Any]) -> dict[str, Any]:
    files = context.files.tree(given["url"], field="input.url")
    target = given.get("targetPath", "./")
    written = _write_tree(context, target, files.items())
    context.log(f"fetched {written} files from {given['url']} into {target}")
    return {}


def _fetch_template(context: StepContext, given: dict[str, Any]) -> dict[str, Any]:
    if given.get("cookiecutterCompat"):
        raise InvalidInput.for_field(
            "input.cookiecutterCompat", "cookiecutter templates are not supported", "false"
        )
    files = context.files.tree(given["url"], field="input.url")
    values = {"values": given.get("values") or {}}
    # As in Backstage: copyWithoutTemplating keeps a file's content but still fills in its
    # path; the older copyWithoutRender keeps both.
    kept_content = given.get("copyWithoutTemplating", [])
    kept_whole = given.get("copyWithoutRender", [])
    extension = given.get("templateFileExtension", False)
    suffix = ".njk" if extension is True else (extension or "")
    rendered: list[tuple[str, bytes]] = []
    for path, content in files.items():
        is_whole_kept = any(fnmatch.fnmatch(path, pattern) for pattern in kept_whole)
        is_verbatim = is_whole_kept or any(fnmatch.fnmatch(path, p) for p in kept_content)
        is_template = not is_verbatim and (not suffix or path.endswith(suffix))
        name = (
            path
            if is_whole_kept
            else context.templater.render_text(
                path, values, field=f"{given['url']}/{path} (its name)"
            )
        )
        if suffix and is_template:
            name = name.removesuffix(suffix)
        if is_template:
            try:
                text = content.decode()
            except UnicodeDecodeError:
                rendered.append((name, content))  # a binary file is copied as it is
                continue
            content = context.templater.render_text(
                text, values, field=f"{given['url']}/{path}"
            ).encode()
        rendered.append((name, content))
    target = given.get("targetPath", "./")
    written = _write_tree(context, target, rendered)
    context.log(f"rendered {written} files from {given['url']} into {target}")
    return {}


def _write_tree(context: StepContext, target: str, files: Iterable[tuple[str, bytes]]) -> int:
    """Write ``files`` under ``target``; every path is checked before one is written."""
    placed = [
        (context.path(f"{target}/{name}", field=f"input.targetPath ({name})"), content)
        for name, content in files
        if name.strip("/")  # a name templated to nothing is left out, as in Backstage
    ]
    for path, content in placed:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
    return len(placed)


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

_FETCH_COMMON = {
    "url": {
        "type": "string",
        "minLength": 1,
        "title": "a folder of the template, relative to its template.yaml, e.g. ./skeleton",
    },
    "targetPath": {"type": "string", "title": "a folder of the workspace, e.g. ./app"},
}
FETCH_PLAIN = StepAction(
    "fetch:plain",
    "Copy a folder of the template's files into the workspace as they are.",
    _fetch_plain,
    {"type": "object", "required": ["url"], "properties": _FETCH_COMMON},
)
FETCH_TEMPLATE = StepAction(
    "fetch:template",
    "Copy a folder of the template's files into the workspace, filling in "
    "${{ values.x }} in their names and contents.",
    _fetch_template,
    {
        "type": "object",
        "required": ["url"],
        "properties": {
            **_FETCH_COMMON,
            "values": {"type": "object", "title": "the values the files see as values.x"},
            "copyWithoutTemplating": {
                "type": "array",
                "items": {"type": "string"},
                "title": "globs of files whose content is kept as is (their paths still filled in)",
            },
            "copyWithoutRender": {
                "type": "array",
                "items": {"type": "string"},
                "title": "globs of files copied as they are, content and path (older option)",
            },
            "templateFileExtension": {
                "type": ["boolean", "string"],
                "title": "true (.njk) or an extension: only files ending so are templated",
            },
            "cookiecutterCompat": {"type": "boolean", "title": "false"},
        },
    },
)


def _notify(context: StepContext, given: dict[str, Any]) -> dict[str, Any]:
    """Paved has no notification centre: the notification is written to the run's log,
    where its author (following the run) sees it."""
    recipients = given.get("entityRefs") if given.get("recipients") == "entity" else ["everyone"]
    context.log(
        f"notification for {', '.join(map(str, recipients or []))}: {given['title']}"
        + (f": {given['info']}" if given.get("info") else "")
    )
    return {}


NOTIFICATION_SEND = StepAction(
    "notification:send",
    "Tell people something when the run gets here; Paved shows it in the run's log.",
    _notify,
    {
        "type": "object",
        "required": ["recipients", "title"],
        "properties": {
            "recipients": {"enum": ["broadcast", "entity"], "title": "broadcast or entity"},
            "entityRefs": {
                "type": "array",
                "items": {"type": "string"},
                "title": "who, when recipients is entity",
            },
            "title": {"type": "string", "title": "what to say"},
            "info": {"type": "string", "title": "more about it"},
            "link": {"type": "string", "title": "a link to follow"},
            "severity": {
                "enum": ["critical", "high", "normal", "low"],
                "title": "how urgent",
            },
            "scope": {"type": "string"},
            "optional": {"type": "boolean"},
        },
    },
)

BUILT_IN_ACTIONS = [
    DEBUG_LOG,
    FETCH_PLAIN,
    FETCH_TEMPLATE,
    FS_RENAME,
    FS_DELETE,
    NOTIFICATION_SEND,
]

"""The actions a template's steps run (``debug:log``, ``fs:rename``, ``fs:delete``...):
each with the JSON schemas of its input and output, listed by ``GET /v2/actions``, its input
checked before it runs. An action works inside its run's workspace and nowhere else."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, Protocol, TypeVar

from jsonschema import Draft202012Validator
from sqlmodel import Session

from portal.actions import Action
from portal.errors import InvalidInput
from portal.gate import Resource
from portal.settings import Settings
from portal.validation import schema_problems
from scaffolder.templating import Templater

Done = TypeVar("Done")


class TemplateFiles(Protocol):
    """The files a template brings with it (its skeletons), wherever they are kept."""

    def tree(self, url: str, *, field: str) -> dict[str, bytes]:
        """Every file under ``url`` (relative to the template), by its path under it."""
        ...


@dataclass(frozen=True)
class FolderFiles:
    """A template's files on disk: next to its ``template.yaml``, under the catalog's file
    roots (read under the same rules as catalog locations)."""

    base: Path  # the template's own folder
    roots: tuple[Path, ...]
    max_bytes: int = 10 * 1024 * 1024

    def tree(self, url: str, *, field: str) -> dict[str, bytes]:
        folder = (self.base / url).resolve()
        # Only the file root the template itself is in: a template in one team's folder
        # does not read another's, nor the portal's git repositories.
        base = self.base.resolve()
        own = [root for root in self.roots if base == root or base.is_relative_to(root)]
        if not any(folder == root or folder.is_relative_to(root) for root in own):
            raise InvalidInput.for_field(
                field, f"{url!r} is outside the template's file root", "a folder of the template"
            )
        if not folder.is_dir():
            raise InvalidInput.for_field(field, f"{url!r} is not a folder", "a folder of files")
        found: dict[str, bytes] = {}
        total = 0
        for path in sorted(folder.rglob("*")):
            # A link is not followed: it could lead anywhere on the machine.
            if path.is_file() and not path.is_symlink() and path.resolve().is_relative_to(folder):
                total += path.stat().st_size
                if total > self.max_bytes:
                    raise InvalidInput.for_field(
                        field, f"{url!r} holds more than {self.max_bytes:,} bytes", "a skeleton"
                    )
                found[path.relative_to(folder).as_posix()] = path.read_bytes()
        return found


@dataclass(frozen=True)
class InlineFiles:
    """A template's files sent with it (a dry run's ``directoryContents``)."""

    files: Mapping[str, bytes]

    def tree(self, url: str, *, field: str) -> dict[str, bytes]:
        prefix = PurePosixPath(url).as_posix().removeprefix("./").strip("/")
        if prefix in ("", "."):
            return dict(self.files)
        if ".." in PurePosixPath(prefix).parts:
            raise InvalidInput.for_field(field, f"{url!r} leads out of the template", "./<folder>")
        return {
            path.removeprefix(prefix + "/"): content
            for path, content in self.files.items()
            if path.startswith(prefix + "/")
        }


class Acting(Protocol):
    """Does work outside the workspace as the person who started the run: decided by the
    policy for them and audited with the work (``TaskContext.act``, bound to them)."""

    def __call__(
        self, action: Action, resource: Resource | None, work: Callable[[Session], Done]
    ) -> Done: ...


class NoFiles:
    """A template read from a URL: it brings no files Paved can fetch."""

    def tree(self, url: str, *, field: str) -> dict[str, bytes]:
        raise InvalidInput.for_field(
            field,
            f"{url!r} cannot be fetched: the template was not read from a file location",
            "a template registered from a file (or a git repository Paved publishes)",
        )


@dataclass
class StepContext:
    """What an action sees of its run: the workspace, the run's log, the template's files
    and the templater that renders them; on a real run (not a dry run), the portal's
    settings and a way to act for the person who started it."""

    workspace: Path
    log: Callable[[str], None]
    files: TemplateFiles = field(default_factory=lambda: InlineFiles({}))
    templater: Templater = field(default_factory=Templater)
    settings: Settings | None = None
    act: Acting | None = None
    user_ref: str | None = None  # who started the run
    task_id: int | None = None
    is_dry_run: bool = False

    def acting(self, action_id: str) -> tuple[Settings, Acting]:
        """The settings and the way to act, which ``action_id`` needs; refused when the run
        has none (a dry run, or outside the portal)."""
        if self.settings is None or self.act is None:
            raise InvalidInput.for_field(
                "action",
                f"{action_id} changes things outside the workspace, which this run may not do",
                "a run started through the portal",
            )
        return self.settings, self.act

    def path(self, relative: str, *, field: str) -> Path:
        """``relative`` inside the workspace; a path that leads out of it is refused."""
        root = self.workspace.resolve()
        found = (root / relative).resolve()
        if found != root and root not in found.parents:
            raise InvalidInput.for_field(
                field, f"{relative!r} leads out of the workspace", "a path inside the workspace"
            )
        return found


Run = Callable[[StepContext, dict[str, Any]], dict[str, Any]]


@dataclass(frozen=True)
class StepAction:
    """One action: what it does, the input it takes and the output it gives."""

    id: str
    description: str
    run: Run
    input_schema: Mapping[str, Any]
    output_schema: Mapping[str, Any] = field(default_factory=lambda: {"type": "object"})
    examples: tuple[Mapping[str, str], ...] = ()
    # Whether a dry run runs it: true for actions that only touch the workspace.
    supports_dry_run: bool = True

    def listed(self) -> dict[str, Any]:
        """As ``GET /v2/actions`` lists it."""
        shown: dict[str, Any] = {
            "id": self.id,
            "description": self.description,
            "schema": {"input": dict(self.input_schema), "output": dict(self.output_schema)},
        }
        if self.examples:
            shown["examples"] = [dict(example) for example in self.examples]
        return shown

    def __call__(self, context: StepContext, given: Mapping[str, Any]) -> dict[str, Any]:
        """Check ``given`` against the input schema, then run."""
        problems = schema_problems(Draft202012Validator(dict(self.input_schema)), given, "input")
        if problems:
            raise InvalidInput(f"{self.id}: {problems[0].field}: {problems[0].message}", problems)
        return self.run(context, dict(given))


def registry(actions: Iterable[StepAction]) -> dict[str, StepAction]:
    """Actions by id; two with one id is a mistake to say at start-up."""
    found: dict[str, StepAction] = {}
    for action in actions:
        if action.id in found:
            raise ValueError(f"two scaffolder actions are named {action.id}")
        found[action.id] = action
    return found

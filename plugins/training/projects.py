"""Where a project's code is and what its ``paved-project.yaml`` says, found from its
catalog entity."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlmodel import Session

from catalog import service as catalog
from catalog.models import CatalogEntity
from catalog.refs import parse_ref, ref_of
from portal.errors import InvalidInput
from portal.projects import PROJECT_FILE, parse_project_file

MANAGED_BY = "backstage.io/managed-by-location"
PROJECT_ANNOTATION = "paved.dev/project"
PROJECT_KINDS = ("component", "model")
GIT_TIMEOUT = 30


@dataclass(frozen=True)
class Project:
    """A project as training sees it: its entities, its code and its settings."""

    component: CatalogEntity
    model: CatalogEntity | None
    source: str  # a git repository (bare or not) or a plain folder
    revision: str | None  # the commit its default branch is at; None for a plain folder
    settings: dict[str, Any]
    inside: str = ""  # the project's folder in ``source``

    @property
    def ref(self) -> str:
        return _ref_text(self.component)

    @property
    def owner(self) -> str:
        return str(self.component.body.get("spec", {}).get("owner", ""))

    @property
    def model_name(self) -> str:
        return str(self.settings["model"])

    @property
    def trained_on(self) -> list[str]:
        if self.model is None:
            return []
        return [str(ref) for ref in self.model.body.get("spec", {}).get("trainedOn", [])]


def find_project(session: Session, ref: str, *, field: str = "project") -> Project:
    """The project ``ref`` names: a Component, or a Model whose Component is the project
    (named by its ``paved.dev/project`` annotation, else declared in the same file)."""
    parsed = parse_ref(ref, field=field, default_kind="component")
    if parsed.kind.lower() not in PROJECT_KINDS:
        raise InvalidInput.for_field(field, f"{ref!r} is a {parsed.kind}", "a Component or Model")
    entity = catalog.get_entity(session, parsed)
    if parsed.kind.lower() == "model":
        model: CatalogEntity | None = entity
        component = _component_of(session, entity, field=field)
    else:
        component, model = entity, None
    source, inside = _source_of(component, field=field)
    revision = _revision_of(source)
    settings = parse_project_file(_read(source, revision, inside, field=field))
    if "training" not in settings:
        raise InvalidInput.for_field(
            f"{PROJECT_FILE}: training", "missing", "a training section with its entrypoint"
        )
    if model is None:
        model = _model_named(session, component, str(settings["model"]))
    return Project(component, model, str(source), revision, settings, inside)


def read_project_file(project: Project, path: str, *, revision: str | None = None) -> bytes:
    """A file of the project (``path`` relative to its folder), at ``revision`` (default: the
    commit its default branch was at when it was found). Raises ``FileNotFoundError``."""
    relative = Path(project.inside or ".", path)
    if relative.is_absolute() or ".." in relative.parts:
        raise FileNotFoundError(f"{path} is outside the project")
    source = Path(project.source)
    at = revision or project.revision
    if at is None:
        return (source / relative).read_bytes()
    git_dir = source if source.suffix == ".git" else source / ".git"
    done = subprocess.run(
        ["git", f"--git-dir={git_dir}", "show", f"{at}:{relative.as_posix()}"],
        capture_output=True, timeout=GIT_TIMEOUT, check=False,
    )  # fmt: skip
    if done.returncode != 0:
        raise FileNotFoundError(f"{relative.as_posix()} is not in {source} at {at[:12]}")
    return done.stdout


def _ref_text(entity: CatalogEntity) -> str:
    return ref_of(entity.body).text


def _annotations(entity: CatalogEntity) -> dict[str, str]:
    return dict(entity.body.get("metadata", {}).get("annotations", {}) or {})


def _same_file(session: Session, entity: CatalogEntity, kind: str) -> list[CatalogEntity]:
    location = _annotations(entity).get(MANAGED_BY)
    if not location or "," in location:
        return []
    filters = [f"kind={kind},metadata.annotations.{MANAGED_BY}={location}"]
    return catalog.search_entities(session, filters, "", limit=5)


def _component_of(session: Session, model: CatalogEntity, *, field: str) -> CatalogEntity:
    named = _annotations(model).get(PROJECT_ANNOTATION)
    if named:
        return catalog.get_entity(session, parse_ref(named, field=field, default_kind="component"))
    beside = _same_file(session, model, "component")
    if len(beside) != 1:
        raise InvalidInput.for_field(
            field,
            f"{_ref_text(model)} names no project",
            f"a Component, or a Model with a {PROJECT_ANNOTATION} annotation",
        )
    return beside[0]


def _model_named(session: Session, component: CatalogEntity, name: str) -> CatalogEntity | None:
    for entity in _same_file(session, component, "model"):
        if entity.body.get("metadata", {}).get("name") == name:
            return entity
    return None


def _source_of(component: CatalogEntity, *, field: str) -> tuple[Path, str]:
    """The repository (or folder) holding the project, and the project file's path in it."""
    location = _annotations(component).get(MANAGED_BY, "")
    kind, _, target = location.partition(":")
    if kind != "file" or not target:
        raise InvalidInput.for_field(
            field,
            f"{_ref_text(component)} was not read from a file or repository of this portal "
            f"({location or 'no location'})",
            "a project published by the scaffolder, or registered from a file",
        )
    path = Path(target)
    for folder in path.parents:
        if folder.suffix == ".git" or (folder / ".git").exists():
            return folder, path.parent.relative_to(folder).as_posix()
    return path.parent, ""


def _revision_of(source: Path) -> str | None:
    """The commit the repository's HEAD is at, or None for a plain folder."""
    if not (source.suffix == ".git" or (source / ".git").exists()):
        return None
    done = subprocess.run(
        ["git", f"--git-dir={source if source.suffix == '.git' else source / '.git'}",
         "rev-parse", "HEAD"],
        capture_output=True, text=True, timeout=GIT_TIMEOUT, check=False,
    )  # fmt: skip
    return done.stdout.strip() if done.returncode == 0 else None


def _read(source: Path, revision: str | None, inside: str, *, field: str) -> str:
    name = f"{inside}/{PROJECT_FILE}" if inside and inside != "." else PROJECT_FILE
    if revision is None:
        path = source / name
        if not path.is_file():
            raise InvalidInput.for_field(field, f"{source} has no {PROJECT_FILE}", _EXPECTED)
        return path.read_text()
    git_dir = source if source.suffix == ".git" else source / ".git"
    done = subprocess.run(
        ["git", f"--git-dir={git_dir}", "show", f"{revision}:{name}"],
        capture_output=True, text=True, timeout=GIT_TIMEOUT, check=False,
    )  # fmt: skip
    if done.returncode != 0:
        raise InvalidInput.for_field(field, f"{source} has no {name}", _EXPECTED)
    return done.stdout


_EXPECTED = f"a project with a {PROJECT_FILE} saying how it trains"

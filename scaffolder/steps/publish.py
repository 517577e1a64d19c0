"""``publish:git``: the workspace committed and pushed to a new git repository.

A ``repoUrl`` on host ``paved`` (``paved?owner=fraud&repo=scorer``) is a bare repository
this portal keeps under ``scaffolder.git_root``, which the catalog reads from; any other host
must be listed in ``scaffolder.git_remotes`` with the remote URL to push to. Backstage's
``publish:github``, ``publish:gitlab``... are the same action, so Backstage templates run
unchanged where their host is configured. Creating a repository is decided by the policy
(``scaffolder.repository.create``) for the person who started the run, and audited.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlmodel import Session

from portal.errors import Conflict, FieldProblem, InvalidInput
from portal.gate import Resource
from portal.settings import Settings
from scaffolder.actions import REPOSITORY_CREATE
from scaffolder.steps import StepAction, StepContext
from scaffolder.templating import REPO_URL_FORM, parse_repo_url

LOCAL_HOST = "paved"
# One path segment of a repository's owner or name: what git hosts accept.
SEGMENT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
BRANCH = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/-]{0,99}$")
SEGMENT_FORM = "letters, digits, '.', '_' or '-', starting with a letter or digit"
ALIASES = ("publish:github", "publish:gitlab", "publish:bitbucket", "publish:gitea")


@dataclass(frozen=True)
class Destination:
    """Where a repository goes: its remote URL, and for a local one, its folder."""

    host: str
    owner: str
    repo: str
    remote: str
    folder: Path | None  # a bare repository of this portal's
    contents_url: str


def destination(repo_url: str, settings: Settings) -> Destination:
    try:
        parts = parse_repo_url(repo_url)
    except ValueError as exc:
        raise InvalidInput.for_field("input.repoUrl", str(exc), REPO_URL_FORM) from None
    host = parts["host"]
    owner = parts.get("owner") or parts.get("organization") or parts.get("workspace") or ""
    repo = parts["repo"]
    for name, value in (("owner", owner), ("repo", repo)):
        if not SEGMENT.match(value) or value.endswith(".git") or value in (".", ".."):
            raise InvalidInput.for_field(
                f"input.repoUrl ({name})", f"{value!r} is not a repository {name}", SEGMENT_FORM
            )
    if host == LOCAL_HOST:
        folder = settings.git_root / owner / f"{repo}.git"
        return Destination(host, owner, repo, folder.as_uri(), folder, str(folder))
    remote = settings.scaffolder.git_remotes.get(host)
    if remote is None:
        hosts = ", ".join([LOCAL_HOST, *sorted(settings.scaffolder.git_remotes)])
        raise InvalidInput.for_field(
            "input.repoUrl",
            f"{host} is not a host Paved may publish to",
            f"a repoUrl on one of: {hosts} (scaffolder.git_remotes lists the others)",
        )
    url = remote.format(owner=owner, repo=repo)
    return Destination(host, owner, repo, url, None, f"https://{host}/{owner}/{repo}/blob/main")


# The user and password part of a URL (https://user:token@host/...): never shown.
CREDENTIALS = re.compile(r"(?<=://)[^/@\s]+@")
GIT_TIMEOUT = 120


def without_credentials(text: str) -> str:
    """``text`` with the credentials of every URL in it left out."""
    return CREDENTIALS.sub("", text)


def _git(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None) -> str:
    command = next(arg for arg in args if not arg.startswith("-"))  # push, not --git-dir=
    try:
        done = subprocess.run(
            ["git", *args],
            cwd=cwd,
            env={**os.environ, "GIT_TERMINAL_PROMPT": "0", **(env or {})},
            capture_output=True,
            text=True,
            timeout=GIT_TIMEOUT,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise InvalidInput.for_field(
            "input.repoUrl",
            f"git {command} did not finish within {GIT_TIMEOUT} s",
            "a repository git can reach",
        ) from None
    if done.returncode != 0:
        said = without_credentials((done.stderr or done.stdout).strip()[:500])
        raise InvalidInput.for_field(
            "input.repoUrl", f"git {command} failed: {said}", "a repository git can push to"
        )
    return done.stdout.strip()


def _publish(context: StepContext, given: dict[str, Any]) -> dict[str, Any]:
    settings, act = context.acting("publish:git")
    where = destination(str(given["repoUrl"]), settings)
    branch = str(given.get("defaultBranch") or "main")
    if not BRANCH.match(branch) or ".." in branch or branch.endswith((".", "/", ".lock")):
        raise InvalidInput.for_field(
            "input.defaultBranch", f"{branch!r} is not a branch name", "e.g. main"
        )
    source = context.path(str(given.get("sourcePath") or "."), field="input.sourcePath")
    if not source.is_dir():
        raise InvalidInput.for_field(
            "input.sourcePath", f"{given.get('sourcePath')!r} is not a folder", "a folder"
        )
    author = {
        "GIT_AUTHOR_NAME": str(given.get("gitAuthorName") or "Paved"),
        "GIT_AUTHOR_EMAIL": str(given.get("gitAuthorEmail") or "scaffolder@paved.invalid"),
    }
    author |= {"GIT_COMMITTER_NAME": "Paved", "GIT_COMMITTER_EMAIL": "scaffolder@paved.invalid"}
    message = str(given.get("gitCommitMessage") or "Initial commit")
    resource = Resource(
        ref=f"repository:{where.host}/{where.owner}/{where.repo}", kind="Repository"
    )

    def push(_session: Session) -> str:
        made = _create_local(where.folder, branch) if where.folder is not None else False
        try:
            return _commit_and_push(source, where.remote, branch, message, author)
        except Exception:
            if made and where.folder is not None:
                shutil.rmtree(where.folder, ignore_errors=True)  # nothing half-made is kept
            raise

    commit = act(REPOSITORY_CREATE, resource, push)
    shown = without_credentials(where.remote)
    context.log(f"published {where.owner}/{where.repo} ({commit[:12]}) to {shown}")
    return {"remoteUrl": shown, "repoContentsUrl": where.contents_url, "commitHash": commit}


def _create_local(folder: Path, branch: str) -> bool:
    if folder.exists():
        said = f"the repository {folder.parent.name}/{folder.stem} exists already"
        taken = FieldProblem("input.repoUrl", said, "a repository that does not exist yet")
        raise Conflict(f"input.repoUrl: {said}; choose another name", [taken])
    folder.parent.mkdir(parents=True, exist_ok=True)
    _git("init", "--quiet", "--bare", f"--initial-branch={branch}", str(folder))
    return True


def _commit_and_push(
    source: Path, remote: str, branch: str, message: str, author: dict[str, str]
) -> str:
    """Commit everything under ``source`` (with a git folder of its own, outside the
    workspace) and push it as ``branch``; returns the commit's hash."""
    with tempfile.TemporaryDirectory(prefix="paved-publish-") as scratch:
        git_dir = f"--git-dir={Path(scratch) / '.git'}"
        tree = f"--work-tree={source}"
        _git("init", "--quiet", f"--initial-branch={branch}", scratch)
        _git(git_dir, tree, "add", "--all")
        _git(git_dir, tree, "commit", "--quiet", "--allow-empty", "-m", message, env=author)
        _git(git_dir, "push", "--quiet", remote, f"HEAD:refs/heads/{branch}")
        return _git(git_dir, "rev-parse", "HEAD")


INPUT_SCHEMA = {
    "type": "object",
    "required": ["repoUrl"],
    "properties": {
        "repoUrl": {
            "type": "string",
            "title": "Repository Location",
            "description": f"Where to publish: {REPO_URL_FORM}; host {LOCAL_HOST} for this "
            "portal's own repositories",
        },
        "description": {"type": "string", "title": "Repository Description"},
        "defaultBranch": {"type": "string", "title": "Default Branch", "default": "main"},
        "sourcePath": {
            "type": "string",
            "title": "Source Path",
            "description": "The folder of the workspace to publish (default: all of it)",
        },
        "gitCommitMessage": {"type": "string", "title": "Git Commit Message"},
        "gitAuthorName": {"type": "string", "title": "Author Name"},
        "gitAuthorEmail": {"type": "string", "title": "Author Email"},
    },
}
OUTPUT_SCHEMA = {
    "type": "object",
    "properties": {
        "remoteUrl": {"type": "string", "title": "A URL git can clone the repository from"},
        "repoContentsUrl": {"type": "string", "title": "Where the repository's files are"},
        "commitHash": {"type": "string", "title": "The commit that was pushed"},
    },
}


def _make_action(action_id: str, description: str) -> StepAction:
    return StepAction(
        id=action_id,
        description=description,
        run=_publish,
        input_schema=INPUT_SCHEMA,
        output_schema=OUTPUT_SCHEMA,
        supports_dry_run=False,
    )


PUBLISH_GIT = _make_action(
    "publish:git",
    "Initializes a git repository with the workspace's files and publishes it: to this "
    "portal's own repositories (host paved) or a host scaffolder.git_remotes allows",
)
PUBLISH_ALIASES = [
    _make_action(alias, "Paved's publish:git, under the id Backstage templates use")
    for alias in ALIASES
]

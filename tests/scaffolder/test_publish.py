"""publish:git: this portal's own bare repositories, or a remote the settings allow."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from portal.errors import Conflict, InvalidInput
from portal.settings import Settings
from scaffolder.steps import StepContext, publish
from scaffolder.steps.publish import PUBLISH_ALIASES, PUBLISH_GIT, without_credentials


def context_for(settings: Settings, workspace: Path, acted: list[str]) -> StepContext:
    def act(action: Any, resource: Any, work: Callable[[Any], Any]) -> Any:
        acted.append(f"{action.name} {resource.ref}")
        return work(None)

    (workspace / "README.md").parent.mkdir(parents=True, exist_ok=True)
    (workspace / "README.md").write_text("# scorer\n")
    return StepContext(workspace=workspace, log=lambda line: None, settings=settings, act=act)


def files_on_main(repository: str) -> list[str]:
    listed = subprocess.run(
        ["git", "ls-remote", "--heads", repository], capture_output=True, text=True, check=True
    )
    assert "refs/heads/main" in listed.stdout
    return listed.stdout.split()


def test_a_remote_the_settings_allow_is_pushed_to_under_backstages_action_id(
    settings: Settings, tmp_path: Path
) -> None:
    remote = tmp_path / "remote" / "acme" / "scorer.git"
    subprocess.run(["git", "init", "--quiet", "--bare", str(remote)], check=True)
    allowed = settings.model_copy(
        update={
            "scaffolder": settings.scaffolder.model_copy(
                update={
                    "git_remotes": {
                        "github.com": f"{tmp_path.as_uri()}/remote/{{owner}}/{{repo}}.git"
                    }
                }
            )
        }
    )
    acted: list[str] = []
    github = next(action for action in PUBLISH_ALIASES if action.id == "publish:github")

    output = github(
        context_for(allowed, tmp_path / "work", acted),
        {"repoUrl": "github.com?owner=acme&repo=scorer", "defaultBranch": "main"},
    )

    assert output["remoteUrl"] == remote.as_uri()
    assert output["repoContentsUrl"] == "https://github.com/acme/scorer/blob/main"
    assert output["commitHash"] in files_on_main(str(remote))
    assert acted == ["scaffolder.repository.create repository:github.com/acme/scorer"]


def test_a_host_the_settings_do_not_list_is_refused_naming_those_allowed(
    settings: Settings, tmp_path: Path
) -> None:
    with pytest.raises(InvalidInput) as refused:
        PUBLISH_GIT(
            context_for(settings, tmp_path / "work", []),
            {"repoUrl": "github.com?owner=acme&repo=scorer"},
        )
    assert refused.value.errors[0].field == "input.repoUrl"
    assert "github.com is not a host Paved may publish to" in refused.value.detail


@pytest.mark.parametrize(
    "repo_url", ["paved?owner=..&repo=x", "paved?owner=a&repo=../../etc", "paved?owner=a"]
)
def test_a_repository_name_that_could_lead_elsewhere_is_refused(
    settings: Settings, tmp_path: Path, repo_url: str
) -> None:
    with pytest.raises(InvalidInput):
        PUBLISH_GIT(context_for(settings, tmp_path / "work", []), {"repoUrl": repo_url})
    assert not settings.git_root.exists()


def test_a_failed_push_leaves_no_repository_behind(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(*args: object) -> str:
        raise InvalidInput.for_field("input.repoUrl", "git push failed: disk full", "space")

    monkeypatch.setattr(publish, "_commit_and_push", refuse)
    context = context_for(settings, tmp_path / "work", [])
    with pytest.raises(InvalidInput, match="disk full"):
        PUBLISH_GIT(context, {"repoUrl": "paved?owner=fraud&repo=scorer"})
    assert not (settings.git_root / "fraud" / "scorer.git").exists()


def test_a_branch_name_git_would_refuse_is_refused_first(
    settings: Settings, tmp_path: Path
) -> None:
    with pytest.raises(InvalidInput) as refused:
        PUBLISH_GIT(
            context_for(settings, tmp_path / "work", []),
            {"repoUrl": "paved?owner=fraud&repo=scorer", "defaultBranch": "-x"},
        )
    assert refused.value.errors[0].field == "input.defaultBranch"


def test_a_remotes_credentials_are_never_shown(settings: Settings, tmp_path: Path) -> None:
    secret_remote = "http://bot:tok3n-value@127.0.0.1:9/{owner}/{repo}.git"  # nothing listens
    allowed = settings.model_copy(
        update={
            "scaffolder": settings.scaffolder.model_copy(
                update={"git_remotes": {"git.example.com": secret_remote}}
            )
        }
    )
    lines: list[str] = []
    context = context_for(allowed, tmp_path / "work", [])
    context.log = lines.append

    with pytest.raises(InvalidInput) as refused:
        PUBLISH_GIT(context, {"repoUrl": "git.example.com?owner=acme&repo=scorer"})

    assert "tok3n" not in refused.value.detail
    assert "git push failed" in refused.value.detail
    assert not any("tok3n" in line for line in lines)
    assert without_credentials("see https://u:p@host/x and ssh://git@h/y") == (
        "see https://host/x and ssh://h/y"
    )


def test_a_repository_that_exists_already_is_a_conflict_naming_its_field(
    settings: Settings, tmp_path: Path
) -> None:
    (settings.git_root / "fraud" / "scorer.git").mkdir(parents=True)

    with pytest.raises(Conflict) as refused:
        PUBLISH_GIT(
            context_for(settings, tmp_path / "work", []),
            {"repoUrl": "paved?owner=fraud&repo=scorer"},
        )

    assert [problem.field for problem in refused.value.errors] == ["input.repoUrl"]
    assert refused.value.detail.startswith("input.repoUrl: the repository fraud/scorer exists")

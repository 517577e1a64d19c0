"""The built-in actions, run on a real workspace: what they do, and what they refuse."""

from __future__ import annotations

from pathlib import Path

import pytest

from portal.errors import InvalidInput
from scaffolder.steps import StepContext, registry
from scaffolder.steps.builtin import DEBUG_LOG, FS_DELETE, FS_RENAME


@pytest.fixture
def lines() -> list[str]:
    return []


@pytest.fixture
def context(tmp_path: Path, lines: list[str]) -> StepContext:
    workspace = tmp_path / "workspace"
    (workspace / "docs").mkdir(parents=True)
    (workspace / "README.md").write_text("# scorer\n")
    (workspace / "docs" / "a.draft.md").write_text("draft")
    (workspace / "docs" / "b.md").write_text("kept")
    (tmp_path / "outside.txt").write_text("not the template's")
    return StepContext(workspace, lines.append)


def test_debug_log_writes_its_message_and_can_list_the_workspace(
    context: StepContext, lines: list[str]
) -> None:
    DEBUG_LOG(context, {"message": "hello", "listWorkspace": "with-contents"})

    assert lines[0] == "hello"
    assert "README.md:\n# scorer\n" in lines
    assert any(line.startswith("docs/b.md") for line in lines)


def test_fs_rename_moves_within_the_workspace_and_will_not_overwrite_unasked(
    context: StepContext,
) -> None:
    FS_RENAME(context, {"files": [{"from": "README.md", "to": "docs/index.md"}]})
    assert (context.workspace / "docs" / "index.md").read_text() == "# scorer\n"
    assert not (context.workspace / "README.md").exists()

    with pytest.raises(InvalidInput) as exists:
        FS_RENAME(context, {"files": [{"from": "docs/index.md", "to": "docs/b.md"}]})
    assert exists.value.errors[0].field == "input.files[0].to"
    FS_RENAME(context, {"files": [{"from": "docs/index.md", "to": "docs/b.md", "overwrite": True}]})
    assert (context.workspace / "docs" / "b.md").read_text() == "# scorer\n"


def test_fs_delete_takes_patterns(context: StepContext) -> None:
    FS_DELETE(context, {"files": ["docs/*.draft.md"]})

    assert not (context.workspace / "docs" / "a.draft.md").exists()
    assert (context.workspace / "docs" / "b.md").exists()


@pytest.mark.parametrize(
    ("action", "given", "field"),
    [
        (
            FS_RENAME,
            {"files": [{"from": "../outside.txt", "to": "stolen.txt"}]},
            "input.files[0].from",
        ),
        (FS_RENAME, {"files": [{"from": "README.md", "to": "/tmp/x"}]}, "input.files[0].to"),
        (FS_DELETE, {"files": ["../*.txt"]}, "input.files[0]"),
        (FS_DELETE, {"files": ["README.md", "**/.."]}, "input.files[1]"),
    ],
)
def test_a_path_out_of_the_workspace_is_refused_and_nothing_moves(
    context: StepContext, action: object, given: dict[str, object], field: str
) -> None:
    with pytest.raises(InvalidInput) as refused:
        action(context, given)  # type: ignore[operator]

    assert refused.value.errors[0].field == field
    assert "leads out of the workspace" in refused.value.errors[0].message
    assert (context.workspace.parent / "outside.txt").read_text() == "not the template's"
    assert (context.workspace / "README.md").exists()


def test_input_that_fails_the_schema_names_the_field(context: StepContext) -> None:
    with pytest.raises(InvalidInput) as refused:
        FS_DELETE(context, {"files": "README.md"})
    assert refused.value.errors[0].field == "input.files"
    with pytest.raises(InvalidInput) as missing:
        FS_RENAME(context, {})
    assert missing.value.errors[0].field == "input.files"


def test_action_ids_are_unique() -> None:
    from scaffolder.execution import BUILT_IN

    assert set(registry(BUILT_IN)) == {
        "debug:log",
        "fetch:plain",
        "fetch:template",
        "fs:rename",
        "fs:delete",
        "notification:send",
        "catalog:write",
        "catalog:register",
        "publish:git",
        "publish:github",
        "publish:gitlab",
        "publish:bitbucket",
        "publish:gitea",
    }
    with pytest.raises(ValueError, match="two scaffolder actions are named debug:log"):
        registry([DEBUG_LOG, DEBUG_LOG])

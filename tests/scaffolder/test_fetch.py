"""fetch:plain and fetch:template: a template's files into the workspace, filled in."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from portal.errors import InvalidInput
from scaffolder.steps import FolderFiles, InlineFiles, StepContext
from scaffolder.steps.builtin import FETCH_PLAIN, FETCH_TEMPLATE
from scaffolder.templating import TemplatingError

from conftest import BACKSTAGE_REFERENCE

CREATE_APP = BACKSTAGE_REFERENCE / "templates" / "create-app-default-template"


def inline(tmp_path: Path, files: dict[str, str], lines: list[str] | None = None) -> StepContext:
    workspace = tmp_path / "workspace"
    workspace.mkdir()
    encoded = {path: text.encode() for path, text in files.items()}
    return StepContext(workspace, (lines if lines is not None else []).append, InlineFiles(encoded))


def test_backstages_create_app_skeleton_is_rendered_with_the_values(tmp_path: Path) -> None:
    workspace = tmp_path / "workspace"
    workspace.mkdir()
    lines: list[str] = []
    context = StepContext(
        workspace, lines.append, FolderFiles(CREATE_APP, (BACKSTAGE_REFERENCE.resolve(),))
    )

    FETCH_TEMPLATE(context, {"url": "./content", "values": {"name": "my-app"}})

    catalog_info = (workspace / "catalog-info.yaml").read_text()
    assert 'name: "my-app"' in catalog_info
    assert "${{" not in catalog_info
    assert sorted(path.name for path in workspace.iterdir()) == [
        "catalog-info.yaml",
        "index.js",
        "package.json",
    ]
    assert json.loads((workspace / "package.json").read_text())  # still valid JSON
    assert lines == ["rendered 3 files from ./content into ./"]


def test_names_and_contents_are_filled_in_unless_copied_as_they_are(tmp_path: Path) -> None:
    context = inline(
        tmp_path,
        {
            "skeleton/${{ values.name }}/README.md": "# ${{ values.name }}\n",
            "skeleton/ci/workflow.yml": "run: echo ${{ github.sha }}\n",
            "skeleton/train.py.njk": "MODEL = '${{ values.name }}'\n",
            "skeleton/notes.txt": "${{ values.name }} stays\n",
        },
    )

    FETCH_TEMPLATE(
        context,
        {
            "url": "./skeleton",
            "targetPath": "./app",
            "values": {"name": "scorer"},
            "copyWithoutTemplating": ["ci/*"],
            "templateFileExtension": True,
        },
    )

    app = context.workspace / "app"
    assert (app / "scorer" / "README.md").read_text() == "# ${{ values.name }}\n"  # no .njk
    assert (app / "ci" / "workflow.yml").read_text() == "run: echo ${{ github.sha }}\n"
    assert (app / "train.py").read_text() == "MODEL = 'scorer'\n"
    assert (app / "notes.txt").read_text() == "${{ values.name }} stays\n"


def test_copied_without_templating_keeps_the_content_but_fills_in_the_path(
    tmp_path: Path,
) -> None:
    skeleton = {
        "skeleton/src/${{ values.name }}/page.html": "{% block content %}{{ x }}{% endblock %}",
        "skeleton/raw/${{ values.name }}.txt": "${{ values.name }}",
    }
    context = inline(tmp_path, skeleton)

    FETCH_TEMPLATE(
        context,
        {
            "url": "./skeleton",
            "values": {"name": "scorer"},
            "copyWithoutTemplating": ["src/*/page.html"],
            "copyWithoutRender": ["raw/*"],
        },
    )

    page = context.workspace / "src" / "scorer" / "page.html"
    assert page.read_text() == "{% block content %}{{ x }}{% endblock %}"
    assert (
        context.workspace / "raw" / "${{ values.name }}.txt"
    ).read_text() == "${{ values.name }}"


def test_fetch_plain_copies_files_as_they_are(tmp_path: Path) -> None:
    context = inline(tmp_path, {"docs/index.md": "${{ values.name }}"})

    FETCH_PLAIN(context, {"url": "./docs", "targetPath": "site"})

    assert (context.workspace / "site" / "index.md").read_text() == "${{ values.name }}"


def test_a_name_filled_in_to_lead_out_of_the_workspace_writes_nothing(tmp_path: Path) -> None:
    context = inline(tmp_path, {"s/ok.txt": "fine", "s/${{ values.name }}": "stolen"})

    with pytest.raises(InvalidInput, match="leads out of the workspace"):
        FETCH_TEMPLATE(context, {"url": "./s", "values": {"name": "../../evil"}})

    assert list(context.workspace.iterdir()) == []
    assert not (tmp_path.parent / "evil").exists()


def test_a_folder_outside_the_catalogs_roots_is_refused(tmp_path: Path) -> None:
    workspace = tmp_path / "workspace"
    workspace.mkdir()
    context = StepContext(workspace, print, FolderFiles(CREATE_APP, (CREATE_APP.resolve(),)))

    with pytest.raises(InvalidInput) as refused:
        FETCH_PLAIN(context, {"url": "../.."})

    assert refused.value.errors[0].field == "input.url"
    assert list(workspace.iterdir()) == []


def test_a_template_reads_no_other_file_root_than_its_own(tmp_path: Path) -> None:
    ours, theirs = tmp_path / "ours", tmp_path / "theirs"
    (ours / "template").mkdir(parents=True)
    (theirs / "private").mkdir(parents=True)
    (theirs / "private" / "notes.txt").write_text("another team's")
    workspace = tmp_path / "workspace"
    workspace.mkdir()
    files = FolderFiles(ours / "template", (ours.resolve(), theirs.resolve()))
    context = StepContext(workspace, print, files)

    with pytest.raises(InvalidInput, match="outside the template's file root"):
        FETCH_PLAIN(context, {"url": "../../theirs/private"})

    assert list(workspace.iterdir()) == []


def test_a_template_file_with_a_syntax_error_names_the_file_and_line(tmp_path: Path) -> None:
    context = inline(tmp_path, {"s/train.py": "import x\nname = ${{ values.name | }}\n"})

    with pytest.raises(TemplatingError) as refused:
        FETCH_TEMPLATE(context, {"url": "./s", "values": {"name": "scorer"}})

    assert refused.value.line == 2
    assert str(refused.value).startswith("./s/train.py (line 2)")
    assert list(context.workspace.iterdir()) == []

"""Every bundled template renders a project whose own tests pass right after generation,
and whose catalog-info.yaml holds valid entities."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from catalog.validation import validate_entity
from portal.projects import parse_project_file
from scaffolder.execution import BUILT_IN, registry
from scaffolder.golden_paths import GOLDEN_PATHS
from scaffolder.runner import run
from scaffolder.steps import FolderFiles, StepContext

TEMPLATES = sorted(path.parent.name for path in GOLDEN_PATHS.glob("*/template.yaml"))
VALUES = {"name": "churn-predictor", "owner": "group:default/fraud"}
# The generated project's tests run offline and quiet: no MLflow telemetry.
OFFLINE = {"MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "true"}


def render(name: str, workspace: Path) -> list[str]:
    folder = GOLDEN_PATHS / name
    template = yaml.safe_load((folder / "template.yaml").read_text())
    lines: list[str] = []
    context = StepContext(
        workspace=workspace,
        log=lines.append,
        files=FolderFiles(folder, (GOLDEN_PATHS,)),
        is_dry_run=True,
    )
    run(
        template,
        VALUES,
        actions=registry(BUILT_IN),
        context=context,
        user={"ref": "user:default/alice", "entity": {"metadata": {"name": "alice"}}},
    )
    return lines


def test_every_golden_path_is_listed_in_their_location() -> None:
    location = yaml.safe_load((GOLDEN_PATHS / "catalog-info.yaml").read_text())
    assert sorted(Path(t).parent.name for t in location["spec"]["targets"]) == TEMPLATES
    assert "classification" in TEMPLATES


@pytest.mark.slow
@pytest.mark.parametrize("name", TEMPLATES)
def test_a_generated_project_passes_its_own_tests(name: str, tmp_path: Path) -> None:
    workspace = tmp_path / "project"
    workspace.mkdir()
    render(name, workspace)
    entities = list(yaml.safe_load_all((workspace / "catalog-info.yaml").read_text()))
    for entity in entities:
        validate_entity(entity)  # raises InvalidInput naming each problem
    component = next(entity for entity in entities if entity["kind"] == "Component")
    if component["spec"]["type"] != "paved-plugin":
        project = parse_project_file((workspace / "paved-project.yaml").read_text())
        assert project["model"] in {e["metadata"]["name"] for e in entities if e["kind"] == "Model"}
    assert "${{" not in "".join(
        path.read_text(errors="replace") for path in workspace.rglob("*") if path.is_file()
    )

    linted = subprocess.run(
        [sys.executable, "-m", "ruff", "check", "--no-cache", "--select", "E,F,I,UP,B", "."],
        cwd=workspace,
        capture_output=True,
        text=True,
    )
    assert linted.returncode == 0, linted.stdout  # a generated project starts clean
    formatted = subprocess.run(
        [sys.executable, "-m", "ruff", "format", "--no-cache", "--check", "."],
        cwd=workspace,
        capture_output=True,
        text=True,
    )
    assert formatted.returncode == 0, formatted.stdout

    # The project's tests run in Paved's own test environment, whose kmock registers a pytest
    # plugin that needs pytest-asyncio; a project made from a golden path has neither.
    tested = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:kmock"],
        cwd=workspace,
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, **OFFLINE, "PYTHONPATH": "", "MLFLOW_TRACKING_URI": ""},
    )
    assert tested.returncode == 0, tested.stdout[-3000:] + tested.stderr[-3000:]
    assert " passed" in tested.stdout

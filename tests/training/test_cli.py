"""``paved train``: a job started from a terminal or a CI job on a running portal, its log
printed as it runs, and an exit code that says how it ended."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy.engine import Engine

from portal.app import create_app
from portal.plugins import Plugins
from portal.settings import Settings

from conftest import ALICE, FRAUD, SEARCH, issue_secret
from processes import paved, serve_in_thread
from training.conftest import BOB, ProjectMaker


def test_paved_train_prints_the_log_and_exits_as_the_job_ended(
    working_settings: Settings, engine: Engine, plugins: Plugins, make_project: ProjectMaker,
    mlflow_store: Path,
) -> None:  # fmt: skip
    quick = make_project("quick", "python -c \"print('epoch 1 of 1: loss 0.25')\"")
    broken = make_project("broken", "python -c \"raise SystemExit('no rows in data/train.csv')\"")
    alice = issue_secret(engine, roles=["ml_engineer"], user=ALICE, groups=[FRAUD])
    bob = issue_secret(engine, roles=["ml_engineer"], user=BOB, groups=[SEARCH])
    app = create_app(working_settings, plugins=plugins, engine=engine)
    with serve_in_thread(app) as url:
        as_alice = {"PAVED_URL": url, "PAVED_TOKEN": alice}

        trained = paved("train", quick, env=as_alice)
        assert trained.returncode == 0, trained.stderr
        assert "epoch 1 of 1: loss 0.25" in trained.stdout
        assert "succeeded; MLflow run" in trained.stderr

        failed = paved("train", broken, env=as_alice)
        assert failed.returncode == 1
        assert "no rows in data/train.csv" in failed.stdout
        assert "failed: the training entry point exited with status 1" in failed.stderr

        unknown = paved("train", "component:default/nowhere", env=as_alice)
        assert unknown.returncode == 2
        assert "there is no entity component:default/nowhere" in unknown.stderr

        denied = paved("train", quick, env={"PAVED_URL": url, "PAVED_TOKEN": bob})
        assert denied.returncode == 3
        assert "group:default/fraud" in denied.stderr

        bad = paved("train", quick, "--param", "seed", env=as_alice)
        assert bad.returncode == 2
        assert "expected NAME=VALUE" in bad.stderr

    unreachable = paved("train", quick, env=as_alice)
    assert unreachable.returncode == 4
    assert "cannot reach Paved" in unreachable.stderr

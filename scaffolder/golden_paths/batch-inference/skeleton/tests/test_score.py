"""The job scores every input file, in chunks, into outputs that appear all at once or not at
all, and refuses an input the model cannot score before writing anything."""

from __future__ import annotations

from pathlib import Path

import mlflow
import pandas as pd
import pytest
from conftest import Tracking

from ${{ values.package }}.inputs import InputError
from ${{ values.package }}.model import NAME
from ${{ values.package }}.score import main, score_folder
from ${{ values.package }}.train import Trained

SAMPLE = Path(__file__).resolve().parents[1] / "data" / "input" / "transactions.csv"


def folder_of(tmp_path: Path, files: dict[str, pd.DataFrame]) -> Path:
    """An input folder holding ``files``, each written in the format its name ends with."""
    folder = tmp_path / "input"
    folder.mkdir()
    for name, frame in files.items():
        if name.endswith(".parquet"):
            frame.to_parquet(folder / name, index=False)
        else:
            frame.to_csv(folder / name, index=False)
    return folder


def leftovers(folder: Path) -> list[str]:
    """What a finished run must not leave behind: staging folders, partial files."""
    return [path.name for path in folder.iterdir() if path.name.startswith(".")]


def test_scoring_the_sample_writes_every_row_with_its_prediction_and_model(
    tracking: Tracking, champion: Trained, tmp_path: Path
) -> None:
    summary = score_folder(SAMPLE.parent, tmp_path / "output", tracking_uri=tracking.uri)

    sample = pd.read_csv(SAMPLE, dtype={"id": "string"})
    assert (summary.files, summary.rows) == (1, len(sample))
    assert summary.model_version == champion.version
    [output] = summary.outputs
    assert output == tmp_path / "output" / "transactions.parquet"
    predictions = pd.read_parquet(output)
    assert list(predictions.columns) == [
        "id",
        "prediction",
        "model_version",
        "model_run_id",
        "scored_at",
    ]
    assert predictions["id"].tolist() == sample["id"].tolist()
    assert set(predictions["prediction"]) == {0, 1}
    assert set(predictions["model_version"]) == {champion.version}
    assert set(predictions["model_run_id"]) == {champion.run_id}
    assert predictions["scored_at"].nunique() == 1
    assert leftovers(tmp_path / "output") == []
    run = mlflow.get_run(summary.run_id)
    assert run.data.metrics["rows"] == len(sample)
    assert run.data.metrics["files"] == 1
    assert run.data.params["model_version"] == champion.version


def test_files_are_read_in_chunks_and_each_gets_its_own_output(
    tracking: Tracking, champion: Trained, tmp_path: Path
) -> None:
    sample = pd.read_csv(SAMPLE, dtype={"id": "string"})
    inputs = folder_of(tmp_path, {"monday.csv": sample[:25], "tuesday.parquet": sample[25:]})

    summary = score_folder(inputs, tmp_path / "output", chunk_rows=7, tracking_uri=tracking.uri)

    assert (summary.files, summary.rows) == (2, len(sample))
    monday, tuesday = (pd.read_parquet(path) for path in summary.outputs)
    assert monday["id"].tolist() == sample["id"][:25].tolist()
    assert tuesday["id"].tolist() == sample["id"][25:].tolist()


def test_an_input_missing_a_column_is_refused_before_anything_is_written(
    tracking: Tracking, champion: Trained, tmp_path: Path
) -> None:
    sample = pd.read_csv(SAMPLE)
    inputs = folder_of(
        tmp_path, {"good.csv": sample, "partial.csv": sample.drop(columns=["amount"])}
    )
    output = tmp_path / "output"

    with pytest.raises(InputError, match=r"partial\.csv is missing the column 'amount'"):
        score_folder(inputs, output, tracking_uri=tracking.uri)

    assert not output.exists()


def test_a_rerun_replaces_the_outputs_and_a_failed_one_leaves_them_as_they_were(
    tracking: Tracking, champion: Trained, tmp_path: Path
) -> None:
    sample = pd.read_csv(SAMPLE)
    inputs = folder_of(tmp_path, {"transactions.csv": sample})
    output = tmp_path / "output"
    score_folder(inputs, output, tracking_uri=tracking.uri)

    score_folder(inputs, output, limit=5, tracking_uri=tracking.uri)
    assert len(pd.read_parquet(output / "transactions.parquet")) == 5

    # Scored after transactions.csv, and refused by the model: the whole run fails.
    late = sample.astype({"amount": "object"})
    late.loc[3, "amount"] = "a lot"
    late.to_csv(inputs / "u-late.csv", index=False)
    with pytest.raises(InputError, match=r"u-late\.csv, rows 1-40: .*amount"):
        score_folder(inputs, output, tracking_uri=tracking.uri)

    assert sorted(path.name for path in output.iterdir()) == ["transactions.parquet"]
    assert len(pd.read_parquet(output / "transactions.parquet")) == 5


def test_a_dry_run_scores_but_writes_and_logs_nothing(
    tracking: Tracking, champion: Trained, tmp_path: Path
) -> None:
    output = tmp_path / "output"

    summary = score_folder(
        SAMPLE.parent, output, limit=5, is_dry_run=True, tracking_uri=tracking.uri
    )

    assert (summary.files, summary.rows, summary.outputs, summary.run_id) == (1, 5, (), None)
    assert not output.exists()


def test_the_command_line_scores_with_the_model_named_by_the_environment(
    tracking: Tracking,
    champion: Trained,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", tracking.uri)
    monkeypatch.setenv("MODEL_URI", f"models:/{NAME}/{champion.version}")

    main(["--input", str(SAMPLE.parent), "--output", str(tmp_path / "output")])

    said = capsys.readouterr().out
    assert "scored 40 rows of 1 file" in said
    assert f"models:/{NAME}/{champion.version} (version {champion.version})" in said


def test_the_command_line_names_the_missing_column_and_fails(
    tracking: Tracking,
    champion: Trained,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", tracking.uri)
    sample = pd.read_csv(SAMPLE)
    inputs = folder_of(tmp_path, {"today.csv": sample.drop(columns=["night_time"])})

    with pytest.raises(SystemExit) as exited:
        main(["--input", str(inputs), "--output", str(tmp_path / "output")])

    assert exited.value.code == 1
    assert "today.csv is missing the column 'night_time'" in capsys.readouterr().err

"""Score every CSV and Parquet file of an input folder with an MLflow model, and write one
Parquet file of predictions per input file into an output folder: all of them, or none.

The model is ``--model-uri``, else ``$MODEL_URI``, else the registered model's champion
(``models:/${{ values.name }}@champion``); MLflow is ``$MLFLOW_TRACKING_URI`` (default:
./mlflow.db). Each batch is logged as a run of the ``${{ values.name }}-batch`` experiment.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pyarrow as pa
from mlflow.exceptions import MlflowException

from ${{ values.package }}.inputs import InputError, check_columns, find_inputs, read_chunks
from ${{ values.package }}.model import DEFAULT_URI, NAME, ScoringModel, load_model
from ${{ values.package }}.outputs import PredictionWriter, staged_outputs

EXPERIMENT = f"{NAME}-batch"
ID_COLUMN = "id"
CHUNK_ROWS = 10_000


@dataclass(frozen=True)
class Summary:
    """What a batch did: returned, printed, and logged to MLflow."""

    files: int
    rows: int
    seconds: float
    model_uri: str
    model_version: str | None
    outputs: tuple[Path, ...]  # none on a dry run
    run_id: str | None  # the MLflow run that logged the batch; None on a dry run

    def __str__(self) -> str:
        version = f" (version {self.model_version})" if self.model_version else ""
        files = "file" if self.files == 1 else "files"
        done = "checked, nothing written" if self.run_id is None else f"run {self.run_id}"
        return (
            f"scored {self.rows} rows of {self.files} {files} in {self.seconds:.2f} s"
            f" with {self.model_uri}{version}; {done}"
        )


def score_folder(
    input_folder: Path,
    output_folder: Path,
    *,
    model_uri: str | None = None,
    id_column: str = ID_COLUMN,
    chunk_rows: int = CHUNK_ROWS,
    limit: int | None = None,
    is_dry_run: bool = False,
    tracking_uri: str | None = None,
) -> Summary:
    """Score every input file into ``output_folder``, or on a dry run score them and write
    nothing. InputError, before anything is written, if a file lacks a column; if anything
    fails, ``output_folder`` is left as it was."""
    started = time.perf_counter()
    default_tracking = os.environ.get("MLFLOW_TRACKING_URI") or "sqlite:///mlflow.db"
    mlflow.set_tracking_uri(tracking_uri or default_tracking)
    model = load_model(model_uri or os.environ.get("MODEL_URI") or DEFAULT_URI)
    inputs = find_inputs(input_folder)
    check_columns(inputs, [id_column, *model.required])
    batch = Batch(model, id_column, chunk_rows, limit, scored_at=datetime.now(UTC))

    if is_dry_run:
        with tempfile.TemporaryDirectory() as scratch:
            rows = batch.score_files(inputs, Path(scratch))
        seconds = time.perf_counter() - started
        return Summary(len(inputs), rows, seconds, model.uri, model.version, (), None)

    mlflow.set_experiment(EXPERIMENT)
    with mlflow.start_run(run_name=f"batch-{batch.scored_at:%Y%m%dT%H%M%SZ}") as run:
        settings = {
            "model_uri": model.uri,
            "model_version": model.version,
            "model_run_id": model.run_id,
            "input": str(input_folder),
            "output": str(output_folder),
            "chunk_rows": chunk_rows,
            "limit": limit,
        }
        mlflow.log_params({name: value for name, value in settings.items() if value is not None})
        with staged_outputs(output_folder) as staging:
            rows = batch.score_files(inputs, staging)
        seconds = time.perf_counter() - started
        mlflow.log_metrics({"files": len(inputs), "rows": rows, "seconds": seconds})
    outputs = tuple(output_folder / output_name(path) for path in inputs)
    return Summary(len(inputs), rows, seconds, model.uri, model.version, outputs, run.info.run_id)


def output_name(path: Path) -> str:
    """The name of an input file's predictions: ``2024-06-01.csv`` gives ``2024-06-01.parquet``."""
    return f"{path.stem}.parquet"


@dataclass(frozen=True)
class Batch:
    """What every file of one batch is scored with: one model, one timestamp."""

    model: ScoringModel
    id_column: str
    chunk_rows: int
    limit: int | None  # rows of each file, at most
    scored_at: datetime

    def score_files(self, paths: list[Path], folder: Path) -> int:
        """Score each file into ``folder``; returns the number of rows scored."""
        return sum(self.score_file(path, folder / output_name(path)) for path in paths)

    def score_file(self, path: Path, target: Path) -> int:
        """Score one file, a chunk at a time, into the Parquet file ``target``."""
        writer = PredictionWriter(target)
        try:
            for chunk in read_chunks(path, self.chunk_rows, id_column=self.id_column):
                if self.limit is not None:
                    chunk = chunk.head(self.limit - writer.rows)
                predicted = self.predict(path, chunk, first_row=writer.rows + 1)
                writer.write(self.predictions(chunk, predicted))
                if self.limit is not None and writer.rows >= self.limit:
                    break
        finally:
            writer.close()
        return writer.rows

    def predict(self, path: Path, chunk: pd.DataFrame, *, first_row: int) -> np.ndarray:
        """The chunk's predictions; InputError naming the file and rows the model refused."""
        if chunk.empty:
            return np.array([])
        try:
            return self.model.predict(chunk)
        except MlflowException as error:
            # MLflow's message quotes the whole chunk before the reason.
            reason = str(error).rsplit("Error: ", 1)[-1]
            rows = f"rows {first_row}-{first_row + len(chunk) - 1}"
            raise InputError(f"{path.name}, {rows}: {reason}") from None

    def predictions(self, chunk: pd.DataFrame, predicted: np.ndarray) -> pa.Table:
        """The rows of an output file: each input row's id and prediction, and what made it."""
        rows = len(chunk)
        return pa.table(
            {
                self.id_column: pa.array(chunk[self.id_column]),
                "prediction": pa.array(predicted),
                "model_version": pa.array([self.model.version] * rows, pa.string()),
                "model_run_id": pa.array([self.model.run_id] * rows, pa.string()),
                "scored_at": pa.array([self.scored_at] * rows, pa.timestamp("us", tz="UTC")),
            }
        )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--input",
        type=Path,
        default=Path(os.environ.get("INPUT_DIR", "data/input")),
        help="the folder of files to score (default: $INPUT_DIR, else data/input)",
    )
    parser.add_argument(
        "--output",
        type=Path,
        default=Path(os.environ.get("OUTPUT_DIR", "output")),
        help="the folder to write predictions in (default: $OUTPUT_DIR, else output)",
    )
    parser.add_argument(
        "--model-uri", help=f"the model to score with (default: $MODEL_URI, else {DEFAULT_URI})"
    )
    parser.add_argument("--id-column", default=ID_COLUMN, help="the column naming each row")
    parser.add_argument("--chunk-rows", type=int, default=CHUNK_ROWS, help="rows per model call")
    parser.add_argument("--limit", type=int, help="score at most this many rows of each file")
    parser.add_argument(
        "--dry-run", action="store_true", help="check and score, but write and log nothing"
    )
    options = parser.parse_args(argv)
    try:
        summary = score_folder(
            options.input,
            options.output,
            model_uri=options.model_uri,
            id_column=options.id_column,
            chunk_rows=options.chunk_rows,
            limit=options.limit,
            is_dry_run=options.dry_run,
        )
    except (InputError, MlflowException) as error:
        # A one-line reason for the scheduler's log: a refused input, a model not found.
        parser.exit(1, f"{parser.prog}: {error}\n")
    print(summary)


if __name__ == "__main__":
    main()

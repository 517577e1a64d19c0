"""The files a batch scores: found in the input folder, checked before any is scored, and read
in chunks so a file larger than memory still fits."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq

FORMATS = (".csv", ".parquet")


class InputError(ValueError):
    """An input the job refuses: its folder is missing, or a file lacks a column."""


def find_inputs(folder: Path) -> list[Path]:
    """The CSV and Parquet files in ``folder``, by name; hidden files are left out."""
    if not folder.is_dir():
        raise InputError(f"{folder} is not a folder")
    found = sorted(
        path
        for path in folder.iterdir()
        if path.is_file() and path.suffix in FORMATS and not path.name.startswith(".")
    )
    stems = [path.stem for path in found]
    twins = sorted({stem for stem in stems if stems.count(stem) > 1})
    if twins:
        # Each input's predictions are named after it: two would overwrite each other.
        raise InputError(f"{folder} has a CSV and a Parquet file named {', '.join(twins)}")
    return found


def columns_of(path: Path) -> list[str]:
    """The column names of a file, read from its header or its Parquet schema only."""
    if path.suffix == ".parquet":
        return list(pq.read_schema(path).names)
    return list(pd.read_csv(path, nrows=0).columns)


def check_columns(paths: Iterable[Path], required: Sequence[str]) -> None:
    """InputError naming the first file that lacks any of the ``required`` columns."""
    for path in paths:
        present = set(columns_of(path))
        missing = [column for column in required if column not in present]
        if missing:
            noun = "column" if len(missing) == 1 else "columns"
            listed = ", ".join(repr(column) for column in missing)
            raise InputError(f"{path.name} is missing the {noun} {listed}")


def read_chunks(path: Path, rows: int, *, id_column: str) -> Iterator[pd.DataFrame]:
    """The file, ``rows`` rows at a time; a file with no rows is one empty chunk. A CSV's ids
    are read as text, so ``007`` stays ``007`` and every chunk's ids have one type."""
    if path.suffix == ".csv":
        yield from pd.read_csv(path, chunksize=rows, dtype={id_column: "string"})
        return
    source = pq.ParquetFile(path)
    if source.metadata.num_rows == 0:
        yield source.schema_arrow.empty_table().to_pandas()
    for batch in source.iter_batches(batch_size=rows):
        yield batch.to_pandas()

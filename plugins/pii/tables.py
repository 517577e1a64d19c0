"""Reading a sample of a dataset's rows from CSV and Parquet files: at most ``max_rows``
rows read, ``sample_rows`` of them kept, spread over all of them (reservoir sampling with a
fixed seed, so the same files give the same sample). Every refusal is an ``InvalidInput``
naming the file and saying what was expected."""

from __future__ import annotations

import csv
import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from portal.errors import InvalidInput

FORMATS = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet"}
BATCH_ROWS = 10_000


@dataclass
class Sample:
    """The rows kept of the files read, in the order they were read."""

    columns: list[str] = field(default_factory=list)
    rows: list[list[str]] = field(default_factory=list)
    rows_read: int = 0
    files: list[str] = field(default_factory=list)
    complete: bool = True  # every row of every file was read (none left over max_rows)


def format_of(path: Path, declared: str | None = None) -> str:
    """``csv`` or ``parquet``: the file's suffix, else the format the dataset declares."""
    found = FORMATS.get(path.suffix.lower()) or (declared or "").lower()
    if found not in ("csv", "parquet"):
        raise InvalidInput.for_field(
            "format",
            f"{path.name} is {declared or path.suffix or 'of no known format'}, which a scan "
            "cannot read",
            "CSV or Parquet files (.csv, .parquet)",
        )
    return found


def read_sample(
    files: Sequence[Path],
    *,
    sample_rows: int,
    max_rows: int,
    max_file_bytes: int,
    declared: str | None = None,
    names: Sequence[str] | None = None,
) -> Sample:
    """A sample of the rows of ``files`` (their columns joined by name). ``names`` are the
    files' names as shown to people (an upload's own name rather than where it was kept)."""
    sample = Sample()
    draws = random.Random(0)  # noqa: S311 (which rows to keep, not a secret)
    kept: list[tuple[int, dict[str, str]]] = []
    for index, path in enumerate(files):
        shown = names[index] if names else path.name
        size = path.stat().st_size
        if size > max_file_bytes:
            raise InvalidInput.for_field(
                "file",
                f"{shown} is {_size(size)}, over the scan's limit of {_size(max_file_bytes)} "
                "(pii.max_file_bytes)",
                "smaller files, or a sample of the data uploaded",
            )
        sample.files.append(shown)
        reader = _csv_rows if format_of(path, declared) == "csv" else _parquet_rows
        for row in reader(path, shown):
            if sample.rows_read >= max_rows:
                sample.complete = False
                break
            for column in row:
                if column not in sample.columns:
                    sample.columns.append(column)
            if len(kept) < sample_rows:
                kept.append((sample.rows_read, row))
            else:
                slot = draws.randrange(sample.rows_read + 1)
                if slot < sample_rows:
                    kept[slot] = (sample.rows_read, row)
            sample.rows_read += 1
        if not sample.complete:
            break
    kept.sort(key=lambda item: item[0])
    sample.rows = [[row.get(column, "") for column in sample.columns] for _, row in kept]
    return sample


def _csv_rows(path: Path, shown: str) -> Iterator[dict[str, str]]:
    line = 0
    try:
        with path.open(encoding="utf-8-sig", newline="") as handle:
            reader = csv.reader(handle)
            header = next(reader, None)
            line = 1
            if not header or not any(name.strip() for name in header):
                raise InvalidInput.for_field(
                    "file",
                    f"{shown} has no header row",
                    "a CSV file whose first row names its columns",
                )
            columns = _column_names(header)
            for values in reader:
                line = reader.line_num
                yield dict(zip(columns, values, strict=False))
    except UnicodeDecodeError:
        raise InvalidInput.for_field(
            "file",
            f"{shown} is not UTF-8 text (near line {line + 1})",
            "a CSV file in UTF-8, or a Parquet file named .parquet",
        ) from None
    except csv.Error as exc:
        raise InvalidInput.for_field(
            "file", f"{shown} line {line + 1} is not CSV: {exc}", "a CSV file"
        ) from None


def _parquet_rows(path: Path, shown: str) -> Iterator[dict[str, str]]:
    import pyarrow as arrow
    import pyarrow.parquet as parquet

    try:
        found = parquet.ParquetFile(path)
        columns = _column_names(found.schema_arrow.names)
        for batch in found.iter_batches(batch_size=BATCH_ROWS):
            # By position: two columns of one name would be one in a dict.
            values = [batch.column(index).to_pylist() for index in range(batch.num_columns)]
            for row in range(batch.num_rows):
                yield {column: _text(values[index][row]) for index, column in enumerate(columns)}
    except (arrow.ArrowException, OSError) as exc:
        raise InvalidInput.for_field(
            "file", f"{shown} is not a Parquet file it can read: {exc}", "a Parquet file"
        ) from None


def _column_names(header: Sequence[str]) -> list[str]:
    """The header's names, blank ones named by position and repeated ones numbered."""
    names: list[str] = []
    for position, raw in enumerate(header, start=1):
        name = str(raw).strip() or f"column {position}"
        while name in names:
            name = f"{name} ({position})"
        names.append(name)
    return names


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def _size(count: int) -> str:
    if count < 1024:
        return f"{count} bytes"
    value = count / 1024
    for unit in ("KiB", "MiB", "GiB"):
        if value < 1024:
            return f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} TiB"

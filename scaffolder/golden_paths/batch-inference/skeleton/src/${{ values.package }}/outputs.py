"""Writing a batch's predictions so that readers never see half of them: every file is written
in a hidden staging folder and moved into place only once the whole batch has succeeded."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq


@contextmanager
def staged_outputs(folder: Path) -> Iterator[Path]:
    """A staging folder to write a batch's files in. When the block ends without an error,
    each file is renamed into ``folder``, replacing the one of the last run; when it raises,
    they are deleted and ``folder`` is left as it was."""
    folder.mkdir(parents=True, exist_ok=True)
    # Inside the output folder, so each rename stays on one file system and is atomic;
    # its name starts with a dot, so readers globbing *.parquet pass it by.
    staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=folder))
    try:
        yield staging
        for path in sorted(staging.iterdir()):
            os.replace(path, folder / path.name)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


class PredictionWriter:
    """One Parquet file of predictions, written a chunk at a time, so a batch never holds a
    whole file in memory."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.rows = 0
        self._writer: pq.ParquetWriter | None = None

    def write(self, predictions: pa.Table) -> None:
        if self._writer is None:
            self._writer = pq.ParquetWriter(self.path, predictions.schema)
        # The first chunk's schema is the file's: a later chunk is cast to it.
        self._writer.write_table(predictions.cast(self._writer.schema))
        self.rows += predictions.num_rows

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()

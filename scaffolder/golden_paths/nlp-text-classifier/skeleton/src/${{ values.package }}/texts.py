"""Labelled texts: reading them from a CSV, and refusing what a model cannot learn from or
label."""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

TEXT = "text"
LABEL = "label"
SAMPLE = Path(__file__).resolve().parents[2] / "data" / "sample.csv"


def load(path: Path) -> pd.DataFrame:
    """The ``text`` and ``label`` columns of a CSV; every row must have both, and there must
    be two labels or more."""
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        columns = reader.fieldnames or []
        missing = [column for column in (TEXT, LABEL) if column not in columns]
        if missing:
            named = " or ".join(repr(column) for column in missing)
            found = ", ".join(repr(column) for column in columns) or "none"
            raise ValueError(f"{path} has no {named} column (its columns: {found})")
        rows: list[tuple[str, str]] = []
        empty: dict[str, list[str]] = {TEXT: [], LABEL: []}
        for record in reader:
            for column in (TEXT, LABEL):
                if not (record[column] or "").strip():
                    # The line the row ends on, as an editor numbers it (a text may span lines).
                    empty[column].append(str(reader.line_num))
            rows.append((record[TEXT], record[LABEL]))
    for column, lines in empty.items():
        if lines:
            where = f"line {lines[0]}" if len(lines) == 1 else f"lines {_first_few(lines)}"
            raise ValueError(f"{path} has an empty {column!r} on {where}")
    labels = sorted({label for _, label in rows})
    if len(labels) < 2:
        found = f"only the label {labels[0]!r}" if labels else "no rows"
        raise ValueError(f"{path} has {found}; a classifier needs two labels or more")
    return pd.DataFrame(rows, columns=[TEXT, LABEL])


def check_texts(texts: Sequence[str]) -> list[str]:
    """``texts`` as a list; refuses no texts at all, and any text that is not a string or is
    empty, since a model would label it anyway."""
    if isinstance(texts, str):
        raise TypeError("expected a list of texts, got one string")
    listed = list(texts)
    if not listed:
        raise ValueError("no texts to label")
    for index, text in enumerate(listed):
        if not isinstance(text, str):
            raise TypeError(f"texts[{index}] is a {type(text).__name__}, not a string")
    empty = [f"texts[{index}]" for index, text in enumerate(listed) if not text.strip()]
    if empty:
        raise ValueError(f"empty text: {_first_few(empty)}")
    return listed


def _first_few(items: list[str], *, shown: int = 5) -> str:
    """The first few ``items`` and how many more: enough to find them, short enough to read."""
    more = f" and {len(items) - shown} more" if len(items) > shown else ""
    return ", ".join(items[:shown]) + more

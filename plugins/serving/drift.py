"""Drift: the features requests carry, compared with the training data's by the population
stability index (PSI) per feature."""

from __future__ import annotations

import csv
import io
import json
import math
import threading
from bisect import bisect_right
from collections import deque
from collections.abc import Iterable, Sequence
from statistics import quantiles
from typing import Any

PSI_EPSILON = 1e-4


class FeatureStats:
    """Numeric values of each feature seen in requests, from 1 request in ``sample_every``:
    the latest ``max_values`` per feature, to compare with a reference (``population_
    stability_index``). Features are named by their column, or by position ("0", "1") when
    the request names none."""

    def __init__(self, *, sample_every: int = 10, max_values: int = 10_000) -> None:
        if sample_every < 1:
            raise ValueError(f"sample_every {sample_every}: expected 1 or more")
        self.sample_every = sample_every
        self.max_values = max_values
        self._lock = threading.Lock()
        self._seen = 0
        self._values: dict[str, deque[float]] = {}

    def observe(self, body: bytes, content_type: str | None = "application/json") -> bool:
        """Take the features of a request's JSON body if it is one of the sampled; returns
        whether it was. Bodies that are not JSON in a known shape are skipped."""
        with self._lock:
            self._seen += 1
            if (self._seen - 1) % self.sample_every:
                return False
        if content_type is not None and "json" not in content_type:
            return False
        try:
            columns = feature_columns(json.loads(body))
        except (ValueError, RecursionError):  # JSONDecodeError, UnicodeDecodeError among them
            return False
        with self._lock:
            for name, values in columns.items():
                kept = self._values.get(name)
                if kept is None:
                    kept = self._values[name] = deque(maxlen=self.max_values)
                kept.extend(values)
        return True

    def features(self) -> list[str]:
        with self._lock:
            return sorted(self._values)

    def values(self, feature: str) -> list[float]:
        with self._lock:
            return list(self._values.get(feature, ()))

    def clear(self) -> None:
        with self._lock:
            self._values.clear()


def feature_columns(payload: Any) -> dict[str, list[float]]:
    """The numeric values of each feature in a scoring request (``dataframe_split``,
    ``dataframe_records``, ``inputs`` or ``instances``); other values are left out."""
    if not isinstance(payload, dict):
        return {}
    columns: dict[str, list[float]] = {}
    if isinstance(split := payload.get("dataframe_split"), dict):
        names = split.get("columns")
        for row in split.get("data") or ():
            if isinstance(row, list):
                _add_row(columns, row, names if isinstance(names, list) else None)
    elif isinstance(records := payload.get("dataframe_records"), list):
        for record in records:
            if isinstance(record, dict):
                _add_record(columns, record)
    else:
        data = payload.get("inputs", payload.get("instances"))
        if isinstance(data, dict):  # columnar: {"a": [1, 2], "b": [3, 4]}
            for name, values in data.items():
                for value in values if isinstance(values, list) else [values]:
                    _add(columns, str(name), value)
        elif isinstance(data, list):
            for row in data:
                if isinstance(row, dict):
                    _add_record(columns, row)
                elif isinstance(row, list):
                    _add_row(columns, row, None)
                else:
                    _add(columns, "0", row)
    return columns


def _add_row(columns: dict[str, list[float]], row: list[Any], names: list[Any] | None) -> None:
    for position, value in enumerate(row):
        name = names[position] if names is not None and position < len(names) else position
        _add(columns, str(name), value)


def _add_record(columns: dict[str, list[float]], record: dict[str, Any]) -> None:
    for name, value in record.items():
        _add(columns, str(name), value)


def _add(columns: dict[str, list[float]], name: str, value: Any) -> None:
    # bool is an int to Python, not a number to a model's drift.
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        columns.setdefault(name, []).append(float(value))


def reference_from(values: Iterable[float], bins: int = 10) -> tuple[list[float], list[float]]:
    """``(edges, proportions)`` of a reference sample, cut at its quantiles.

    ``edges`` are the inner cut points, ascending and distinct; the ``len(edges) + 1`` bins
    are ``(-inf, edges[0])``, ``[edges[0], edges[1])``, ..., ``[edges[-1], inf)``, so every
    value falls in one. Ties (a feature with few values) make fewer bins.
    """
    ordered = sorted(values)
    if not ordered:
        raise ValueError("a reference needs values")
    if bins < 2:
        raise ValueError(f"bins {bins}: expected 2 or more")
    cuts = quantiles(ordered, n=bins, method="inclusive") if len(ordered) > 1 else ordered
    edges = sorted(set(cuts))
    return edges, _proportions(edges, ordered)


def population_stability_index(
    expected_bins: Sequence[float],
    expected_proportions: Sequence[float],
    observed_values: Iterable[float],
) -> float:
    """PSI of ``observed_values`` against a reference from ``reference_from``:
    ``sum((o - e) * ln(o / e))`` over the bins, an empty bin counting as ``PSI_EPSILON``.
    Below 0.1 is no shift, 0.1 to 0.2 a moderate one, above 0.2 a significant one."""
    if len(expected_proportions) != len(expected_bins) + 1:
        raise ValueError(
            f"{len(expected_bins)} edges make {len(expected_bins) + 1} bins, "
            f"not {len(expected_proportions)}"
        )
    observed = _proportions(expected_bins, observed_values)
    total = 0.0
    for o, e in zip(observed, expected_proportions, strict=True):
        o, e = max(o, PSI_EPSILON), max(e, PSI_EPSILON)
        total += (o - e) * math.log(o / e)
    return total


def _proportions(edges: Sequence[float], values: Iterable[float]) -> list[float]:
    counts = [0] * (len(edges) + 1)
    for value in values:
        counts[bisect_right(edges, value)] += 1
    seen = sum(counts)
    if not seen:
        raise ValueError("no values to compare")
    return [count / seen for count in counts]


def references_from_csv(
    data: bytes, *, bins: int = 10, max_rows: int = 100_000
) -> dict[str, dict[str, list[float]]]:
    """Each numeric column of a CSV (the training data) as a reference for
    ``population_stability_index``: ``{column: {"edges": [...], "proportions": [...]}}``.
    Columns with a value that is not a number are left out."""
    rows = csv.reader(io.StringIO(data.decode("utf-8", errors="replace")))
    header = next(rows, None)
    if not header:
        return {}
    columns: dict[str, list[float]] = {name: [] for name in header}
    numeric = set(header)
    for count, row in enumerate(rows):
        if count >= max_rows:
            break
        for name, cell in zip(header, row, strict=False):
            if name not in numeric:
                continue
            try:
                value = float(cell)
            except ValueError:
                numeric.discard(name)
                continue
            if math.isfinite(value):
                columns[name].append(value)
    references = {}
    for name in header:
        if name in numeric and columns[name]:
            edges, proportions = reference_from(columns[name], bins)
            references[name] = {"edges": edges, "proportions": proportions}
    return references

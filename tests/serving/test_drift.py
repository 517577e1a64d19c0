"""Drift: the features read from scoring requests, and the population stability index."""

from __future__ import annotations

import json
import random

import pytest

from plugins.serving.drift import (
    FeatureStats,
    feature_columns,
    population_stability_index,
    reference_from,
)


def normal(mean: float, seed: int, count: int = 5000) -> list[float]:
    draws = random.Random(seed)
    return [draws.gauss(mean, 1.0) for _ in range(count)]


def test_identical_distributions_have_a_psi_near_zero() -> None:
    edges, proportions = reference_from(normal(0.0, seed=1))

    assert len(edges) == 9
    assert proportions == pytest.approx([0.1] * 10, abs=0.002)
    assert population_stability_index(edges, proportions, normal(0.0, seed=2)) < 0.02


def test_a_shifted_distribution_has_a_psi_above_the_significant_shift() -> None:
    edges, proportions = reference_from(normal(0.0, seed=1))

    assert population_stability_index(edges, proportions, normal(1.0, seed=2)) > 0.2


def test_a_feature_with_few_values_makes_fewer_bins_and_still_shows_drift() -> None:
    edges, proportions = reference_from([0.0] * 70 + [1.0] * 30)

    assert sum(proportions) == pytest.approx(1.0)
    assert population_stability_index(edges, proportions, [0.0] * 70 + [1.0] * 30) == 0.0
    assert population_stability_index(edges, proportions, [0.0] * 30 + [1.0] * 70) > 0.2


def test_psi_refuses_edges_and_proportions_that_do_not_match() -> None:
    with pytest.raises(ValueError, match="3 edges make 4 bins, not 3"):
        population_stability_index([1.0, 2.0, 3.0], [0.3, 0.3, 0.4], [1.5])


@pytest.mark.parametrize(
    "payload",
    [
        {"dataframe_split": {"columns": ["age", "plan"], "data": [[30, "pro"], [40.5, "free"]]}},
        {"dataframe_records": [{"age": 30, "plan": "pro"}, {"age": 40.5, "plan": "free"}]},
        {"inputs": {"age": [30, 40.5], "plan": ["pro", "free"]}},
        {"instances": [{"age": 30, "plan": "pro"}, {"age": 40.5, "active": True}]},
    ],
)
def test_features_are_read_from_every_scoring_format(payload: dict[str, object]) -> None:
    assert feature_columns(payload) == {"age": [30.0, 40.5]}


def test_features_without_names_are_named_by_position() -> None:
    assert feature_columns({"inputs": [[1, 2.5], [3, None]]}) == {"0": [1.0, 3.0], "1": [2.5]}
    assert feature_columns({"dataframe_split": {"data": [[1, 2]]}}) == {"0": [1.0], "1": [2.0]}
    assert feature_columns({"instances": [7, 8]}) == {"0": [7.0, 8.0]}
    assert feature_columns(["not", "a", "request"]) == {}


def test_feature_stats_sample_one_request_in_n() -> None:
    stats = FeatureStats(sample_every=3, max_values=4)
    sampled = [
        stats.observe(json.dumps({"inputs": [[value]]}).encode(), "application/json")
        for value in range(12)
    ]

    assert sampled == [True, False, False] * 4
    assert stats.features() == ["0"]
    assert stats.values("0") == [0.0, 3.0, 6.0, 9.0]
    assert stats.observe(b"not json", "application/json") is False
    assert stats.observe(b"a,b\n1,2", "text/csv") is False

"""Popularity-bias task: mean popularity of grounded tracks, catalog coverage."""

from __future__ import annotations

import math

import pytest

from evaluation.tasks.popularity import catalog_coverage, mean_popularity

POPULARITY = {"t1": 90.0, "t2": 70.0, "t3": None, "t4": math.nan}


def test_docstring_example() -> None:
    assert mean_popularity(["t1", "t2", None], POPULARITY) == 80.0
    assert mean_popularity(["t1", "t3"], POPULARITY) == 90.0
    assert catalog_coverage([["t1", "t2", None], ["t1", "t3"]], 10) == 0.3


def test_unknown_popularity_is_skipped() -> None:
    assert mean_popularity(["t3", "t4", None, "missing"], POPULARITY) is None


def test_coverage_counts_distinct_ids_only() -> None:
    assert catalog_coverage([["t1", "t1"], ["t1"], []], 4) == 0.25
    with pytest.raises(ValueError):
        catalog_coverage([["t1"]], 0)

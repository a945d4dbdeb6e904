"""Diversity task: distinct and repeated artists per playlist."""

from __future__ import annotations

from evaluation.tasks.diversity import diversity_scores


def test_docstring_example() -> None:
    scores = diversity_scores(["Nick Drake", "nick drake", "Low", "Nick Drake"])
    assert scores == {
        "distinct_artists": 2.0,
        "repeated_artists": 2.0,
        "distinct_artist_ratio": 0.5,
        "max_artist_share": 0.75,
    }


def test_all_distinct() -> None:
    scores = diversity_scores(["A", "B", "C"])
    assert scores["repeated_artists"] == 0.0
    assert scores["distinct_artist_ratio"] == 1.0
    assert scores["max_artist_share"] == 1 / 3


def test_empty_playlist_is_not_scored() -> None:
    assert set(diversity_scores([]).values()) == {None}

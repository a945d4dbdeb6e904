"""Fulfilment task: per-constraint scores against the hidden intent."""

from __future__ import annotations

import json

import pytest

from evaluation.tasks.fulfillment import (
    avoid_score,
    constraint_scores,
    fulfillment,
    genre_score,
    length_score,
    parse_intent,
    range_score,
)

DRAKE = {
    "artist": "Nick Drake",
    "genre": "folk",
    "subgenre": "indie folk",
    "year": 1995,
    "energy": 0.3,
    "valence": 0.2,
}
COLDPLAY = {
    "artist": "Coldplay",
    "genre": "Rock",
    "subgenre": "Britpop",
    "year": 2000,
    "energy": 0.6,
    "valence": 0.5,
}
NO_FEATURES = {
    "artist": "Bon Iver",
    "genre": "Folk",
    "subgenre": None,
    "year": None,
    "energy": None,
    "valence": None,
}

INTENT = {
    "category": "genre_mood",
    "genre": "folk",
    "mood": "mellow",
    "energy": [0.0, 0.45],
    "valence": None,
    "era": [1990, 2009],
    "length": 4,
    "avoid_artists": ["Coldplay"],
}


def test_docstring_example():
    scores = constraint_scores([DRAKE, None], INTENT)
    assert scores == {"genre": 0.5, "energy": 0.5, "era": 0.5, "length": 0.5, "avoid_artists": 0.5}
    assert fulfillment(scores) == 0.5


def test_genre_matches_genre_or_subgenre_case_insensitively():
    assert genre_score([DRAKE, COLDPLAY, NO_FEATURES], "FOLK") == pytest.approx(2 / 3)
    assert genre_score([DRAKE, COLDPLAY], "britpop") == 0.5
    assert genre_score([DRAKE], "indie folk") == 1.0
    assert genre_score([DRAKE], "indie") == 0.0


def test_ranges_are_inclusive_and_missing_values_fail():
    assert range_score([DRAKE, COLDPLAY], "energy", [0.3, 0.6]) == 1.0
    assert range_score([DRAKE, COLDPLAY], "year", [1996, 2000]) == 0.5
    assert range_score([NO_FEATURES, None], "valence", [0.0, 1.0]) == 0.0


def test_avoid_artists_normalised():
    assert avoid_score([DRAKE, COLDPLAY], ["COLDPLAY!"]) == 0.5
    assert avoid_score([DRAKE, None], ["Coldplay"]) == 0.5


@pytest.mark.parametrize(
    ("n", "length", "expected"), [(8, 8, 1.0), (6, 8, 0.75), (10, 8, 0.75), (0, 8, 0.0), (20, 8, 0.0)]
)
def test_length_score(n, length, expected):
    assert length_score(n, length) == expected


def test_empty_playlist_fails_every_constraint():
    scores = constraint_scores([], INTENT)
    assert set(scores) == {"genre", "energy", "era", "length", "avoid_artists"}
    assert fulfillment(scores) == 0.0


def test_only_applicable_constraints_are_scored():
    intent = {
        **INTENT,
        "genre": None,
        "energy": None,
        "era": None,
        "avoid_artists": [],
        "valence": [0.4, 1.0],
    }
    scores = constraint_scores([DRAKE, COLDPLAY, COLDPLAY], intent)
    assert scores == {"valence": pytest.approx(2 / 3), "length": 0.75}
    assert fulfillment(scores) == pytest.approx((2 / 3 + 0.75) / 2)


def test_no_applicable_constraint():
    none = dict.fromkeys(INTENT) | {"avoid_artists": []}
    assert constraint_scores([DRAKE], none) == {}
    assert fulfillment({}) is None


def test_parse_intent():
    assert parse_intent(json.dumps(INTENT)) == INTENT
    assert parse_intent(INTENT) == INTENT
    assert parse_intent(None) is None
    assert parse_intent("  ") is None

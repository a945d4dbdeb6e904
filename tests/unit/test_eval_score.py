"""score_playlists: every task on hand-built rows, aggregated into flat metrics."""

from __future__ import annotations

import json
import math

import pandas as pd
import pytest

from evaluation.score import EvalResult, score_playlists

CATALOG = pd.DataFrame(
    {
        "track_id": ["t1", "t2", "t3", "t4"],
        "title": ["Pink Moon", "Sunflower", "One More Time", "River"],
        "artist": ["Nick Drake", "Low", "Daft Punk", "Joni Mitchell"],
        "album": ["Pink Moon", "Things We Lost in the Fire", "Discovery", "Blue"],
        "genre": ["folk", "rock", "electronic", "folk"],
        "subgenre": ["indie folk", "slowcore", "house", "singer-songwriter"],
        "year": [1972, 2001, 2000, 1971],
        "duration_ms": [120_000, 240_000, 320_000, 240_000],
        "popularity": [60, 40, 80, 70],
        "energy": [0.2, 0.3, 0.9, math.nan],
        "valence": [0.3, 0.4, 0.8, 0.2],
        "danceability": [0.3, 0.3, 0.9, 0.2],
        "acousticness": [0.9, 0.5, 0.1, 0.9],
        "tempo": [100.0, 80.0, 123.0, 90.0],
    }
)


def _intent(category: str, **constraints) -> str:
    base = {"genre": None, "mood": None, "energy": None, "valence": None, "era": None, "length": None}
    return json.dumps({"category": category, **base, "avoid_artists": [], **constraints})


ROWS = [
    {
        "prompt_id": "a",
        "request": "70s folk, low energy, no Low",
        "candidates": ["t1", "t2", "t3"],
        "intent": _intent(
            "genre_mood", genre="folk", energy=[0.0, 0.45], era=[1970, 1979], length=2, avoid_artists=["Low"]
        ),
    },
    {
        "prompt_id": "b",
        "request": "high energy",
        "candidates": ["t3", "t4"],
        "intent": _intent("energy", energy=[0.8, 1.0], length=4),
    },
    {"prompt_id": "c", "request": "anything", "candidates": [], "intent": None},
    {
        "prompt_id": "d",
        "request": "one folk song",
        "candidates": ["t1"],
        "intent": _intent("genre_mood", genre="folk", length=1),
    },
]
COMPLETIONS = [
    "c1 | Nick Drake - Pink Moon\nc2 | Low - Sunflower",
    # The c0 line names t4, which is also a candidate; the last line does not parse.
    "c1 | Daft Punk - One More Time\nc0 | Joni Mitchell - River\nblah",
    "",
    "c1 | Nick Drake - Pink Moon",
]

EXPECTED = {
    "n_requests": 4.0,
    "mean_length": 1.25,
    "format_valid": 0.5,
    "format_parses": 0.5,
    "format_duplicates": 0.0,
    "grounded": (1 + 2 / 3 + 0 + 1) / 4,
    "fully_grounded": 0.5,
    "in_candidates": (1 + 2 / 3 + 1) / 3,
    # a and b answer with their first two candidates in order (b's c0 line names its c2); d has one line.
    "copies_order": 1.0,
    "mean_candidate_rank": (1.5 + 1.5 + 1) / 3,
    "n_fulfillment": 3.0,
    "n_no_intent": 1.0,
    # a: genre 1/2, energy 1, era 1/2, length 1, avoid 1/2 -> 0.7; b: energy 1/2 (t4 lacks it), length 1/2; d: 1.
    "fulfillment": (0.7 + 0.5 + 1.0) / 3,
    "fulfillment/genre": 0.75,
    "fulfillment/energy": 0.75,
    "fulfillment/era": 0.5,
    "fulfillment/length": 2.5 / 3,
    "fulfillment/avoid_artists": 0.5,
    "fulfillment/category/genre_mood": 0.85,
    "fulfillment/category/energy": 0.5,
    # Every parsed line names its catalog track exactly; c has no parsed line and is not counted.
    "grounded_exact": 1.0,
    "grounded_normalised": 1.0,
    "grounded_fuzzy": 1.0,
    "hallucination_rate": 0.0,
    "distinct_artists": 5 / 3,
    "repeated_artists": 0.0,
    "distinct_artist_ratio": 1.0,
    "max_artist_share": (0.5 + 0.5 + 1.0) / 3,
    # a: (60 + 40) / 2, b: (80 + 70) / 2, d: 60; all four tracks are used.
    "mean_popularity": (50 + 75 + 60) / 3,
    "catalog_coverage": 1.0,
}


def test_metrics():
    result = score_playlists(COMPLETIONS, ROWS, CATALOG)
    assert isinstance(result, EvalResult)
    assert result.metrics == pytest.approx(EXPECTED)


def test_per_row():
    a, b, c, _ = score_playlists(COMPLETIONS, ROWS, CATALOG).per_row
    assert a["prompt_id"] == "a" and a["request"] == ROWS[0]["request"] and a["completion"] == COMPLETIONS[0]
    assert a["track_ids"] == ["t1", "t2"] and a["lines"] == ["Nick Drake - Pink Moon", "Low - Sunflower"]
    assert a["fulfillment"] == pytest.approx(0.7) and a["fulfillment/genre"] == 0.5
    assert a["category"] == "genre_mood"
    assert b["track_ids"] == ["t3", "t4"] and b["grounded_lines"] == [True, True]
    assert b["format_valid"] == 0.0 and b["grounded"] == pytest.approx(2 / 3)
    assert "fulfillment/genre" not in b
    assert c["has_intent"] is False and c["fulfillment"] is None and c["in_candidates"] is None
    assert c["n_lines"] == 0


def test_rows_read_back_from_parquet(tmp_path):
    # Parquet gives numpy arrays for candidates and None for a null intent.
    pd.DataFrame(ROWS).to_parquet(tmp_path / "eval.parquet")
    rows = pd.read_parquet(tmp_path / "eval.parquet").to_dict("records")
    assert score_playlists(COMPLETIONS, rows, CATALOG).metrics == pytest.approx(EXPECTED)


def test_nan_intent_counts_as_missing():
    rows = [{**ROWS[0], "intent": math.nan}]
    metrics = score_playlists(COMPLETIONS[:1], rows, CATALOG).metrics
    assert metrics["n_no_intent"] == 1.0 and metrics["n_fulfillment"] == 0.0 and "fulfillment" not in metrics


def test_open_generation_only_has_no_candidate_metric():
    metrics = score_playlists(["c0 | Low - Sunflower"], [ROWS[2]], CATALOG).metrics
    assert metrics["grounded"] == 1.0 and "in_candidates" not in metrics


def test_open_generation_hallucinations_and_loose_matches():
    completions = [
        "c0 | nick drake - Pink Moon (Remastered)\nc0 | Daft Punk - One More Tim\nc0 | Low - Made Up Song"
    ]
    result = score_playlists(completions, [ROWS[2]], CATALOG)
    assert result.per_row[0]["match_levels"] == ["normalised", "fuzzy", None]
    assert result.metrics["hallucination_rate"] == pytest.approx(1 / 3)
    assert result.metrics["grounded_exact"] == 0.0 and result.metrics["grounded_normalised"] == pytest.approx(
        1 / 3
    )
    assert result.metrics["repeated_artists"] == 0.0


def test_simulated_users_run_when_the_catalog_has_the_listener_attributes():
    catalog = CATALOG.assign(energy=[0.2, 0.3, 0.9, 0.4])
    result = score_playlists(COMPLETIONS, ROWS, catalog, n_replays=4)
    assert result.metrics["n_sim"] == 3.0  # the rows with an intent
    assert 0.0 <= result.metrics["sim_skip_rate"] <= 1.0 and result.metrics["sim_saves"] >= 0.0
    assert result.per_row[2].get("sim_saves") is None  # no intent, no listener
    assert result.metrics == score_playlists(COMPLETIONS, ROWS, catalog, n_replays=4).metrics  # deterministic


def test_empty_input():
    assert score_playlists([], [], CATALOG).metrics == {"n_requests": 0.0}


def test_length_mismatch_raises():
    with pytest.raises(ValueError, match="3 completions for 4 rows"):
        score_playlists(COMPLETIONS[:3], ROWS, CATALOG)


def test_a_repeated_track_is_replayed_once():
    # Row d asks for one folk song: Pink Moon once, or Pink Moon looped five times, earns the same replay.
    catalog = CATALOG.assign(energy=[0.2, 0.3, 0.9, 0.4])
    once = score_playlists([COMPLETIONS[3]], [ROWS[3]], catalog, n_replays=16).per_row[0]
    looped = score_playlists(["\n".join([COMPLETIONS[3]] * 5)], [ROWS[3]], catalog, n_replays=16).per_row[0]
    assert looped["format_duplicates"] == 1.0 and looped["n_lines"] == 5
    assert once["sim_saves"] > 0  # the one track is on intent and saved in some replays
    assert looped["sim_saves"] == once["sim_saves"] and looped["sim_skip_rate"] == once["sim_skip_rate"]

"""Reference playlists: retrieval order (copy the candidates) and the oracle (the hidden intent's best fits)."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from evaluation.baselines import oracle, requested_length, retrieval_order, score_baselines
from evaluation.report import html_report
from evaluation.score import score_playlists
from playlist.grounding import catalog_records, catalog_tracks

# Five candidates shown in retrieval order; the request wants 2 folk tracks of the 1970s, no "Low".
CATALOG = pd.DataFrame(
    {
        "track_id": ["t1", "t2", "t3", "t4", "t5"],
        "title": ["One More Time", "Sunflower", "Pink Moon", "River", "Hazey Jane"],
        "artist": ["Daft Punk", "Low", "Nick Drake", "Joni Mitchell", "Nick Drake"],
        "genre": ["electronic", "folk", "folk", "folk", "folk"],
        "year": [2000, 1975, 1972, 1971, 1990],
        "energy": [0.9, 0.3, 0.2, 0.3, 0.2],
        "valence": [0.8, 0.4, 0.3, 0.2, 0.3],
        "duration_ms": [320_000, 240_000, 120_000, 240_000, 200_000],
        "popularity": [80, 40, 60, 70, 30],
    }
)
TRACKS, RECORDS = catalog_tracks(CATALOG), catalog_records(CATALOG)


def _intent(**constraints) -> str:
    base = {"category": "genre_era", "genre": None, "mood": None, "energy": None, "valence": None}
    return json.dumps({**base, "era": None, "length": None, "avoid_artists": [], **constraints})


ROW = {
    "prompt_id": "a",
    "request": "70s folk, 2 songs, no Low",
    "candidates": ["t1", "t2", "t3", "t4", "t5"],
    "intent": _intent(genre="folk", era=[1970, 1979], length=2, avoid_artists=["Low"]),
}


def test_retrieval_order_copies_the_first_candidates_the_request_asks_for() -> None:
    assert retrieval_order(ROW, TRACKS, RECORDS) == "c1 | Daft Punk - One More Time\nc2 | Low - Sunflower"


def test_oracle_takes_the_best_fits_skipping_avoided_artists() -> None:
    # t2 is folk of the 70s but by an avoided artist (fit 0); t5 is folk of 1990 (era fit 0.05).
    assert oracle(ROW, TRACKS, RECORDS) == "c3 | Nick Drake - Pink Moon\nc4 | Joni Mitchell - River"


def test_the_oracle_keeps_the_shown_order_between_equal_fits() -> None:
    row = {**ROW, "intent": _intent(genre="folk", length=3)}
    assert [line[:2] for line in oracle(row, TRACKS, RECORDS).splitlines()] == ["c2", "c3", "c4"]


def test_length_defaults_to_ten_and_rows_without_what_a_baseline_needs_get_none() -> None:
    no_intent = {**ROW, "intent": None}
    assert requested_length(no_intent) == 10
    assert len(retrieval_order(no_intent, TRACKS, RECORDS).splitlines()) == 5  # all five candidates
    assert oracle(no_intent, TRACKS, RECORDS) is None
    assert retrieval_order({**ROW, "candidates": []}, TRACKS, RECORDS) is None


def test_a_candidate_missing_from_the_catalog_is_named() -> None:
    with pytest.raises(KeyError, match=r"prompt 'a'.*t9"):
        retrieval_order({**ROW, "candidates": ["t1", "t9"]}, TRACKS, RECORDS)


def test_baselines_are_scored_like_models_and_bracket_them() -> None:
    rows = [ROW, {**ROW, "prompt_id": "b", "candidates": []}]
    scored = score_baselines(["retrieval", "oracle"], rows, CATALOG)
    assert scored["retrieval"].metrics["n_requests"] == 1  # the row without candidates has no answer
    assert scored["oracle"].metrics["fulfillment"] == 1.0
    assert scored["retrieval"].metrics["fulfillment"] < scored["oracle"].metrics["fulfillment"]
    # Their answers go through the same parse and grounding as a model's.
    assert scored["oracle"].metrics["grounded"] == scored["retrieval"].metrics["grounded"] == 1.0


def test_replays_per_playlist_reach_the_simulated_users() -> None:
    """One replay gives whole saves per playlist; many give their mean."""
    once, many = (score_baselines(["oracle"], [ROW], CATALOG, n_replays=n)["oracle"] for n in (1, 64))
    assert float(once.per_row[0]["sim_saves"]).is_integer()
    assert not float(many.per_row[0]["sim_saves"]).is_integer()


def test_no_oracle_on_a_catalog_the_simulated_fit_cannot_read() -> None:
    catalog = CATALOG.drop(columns="valence")
    assert set(score_baselines(["retrieval", "oracle"], [ROW], catalog)) == {"retrieval"}


def test_the_report_shows_references_and_pairs_the_last_model_against_them() -> None:
    model = score_playlists(["c3 | Nick Drake - Pink Moon\nc1 | Daft Punk - One More Time"], [ROW], CATALOG)
    refs = score_baselines(["retrieval", "oracle"], [ROW], CATALOG)
    page = html_report("e", {"sft": model}, [], references=refs)
    for text in ("<th>retrieval</th>", "<th>oracle</th>", "sft − retrieval", "sft − oracle", "Joni Mitchell"):
        assert text in page

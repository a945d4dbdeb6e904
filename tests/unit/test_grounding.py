"""Parsing and grounding of completions against candidates and the catalog."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from playlist.grounding import catalog_records, catalog_tracks, ground_completion
from playlist.prompts import Track, catalog_key_index

CATALOG = pd.DataFrame(
    {
        "track_id": ["t1", "t2", "t3", "t4"],
        "title": ["Pink Moon", "Sunflower", "One More Time", "River"],
        "artist": ["Nick Drake", "Low", "Daft Punk", "Joni Mitchell"],
        "genre": ["folk", "rock", "electronic", None],
        "subgenre": ["indie folk", "slowcore", "house", "singer-songwriter"],
        "year": [1972, 2001, 2000, 1971],
        "energy": [0.2, 0.3, 0.9, math.nan],
        "valence": [0.3, 0.4, 0.8, 0.2],
    }
)
TRACKS = catalog_tracks(CATALOG)
INDEX = catalog_key_index(list(TRACKS.values()))
CANDIDATES = ["t1", "t2", "t3"]


def _ground(text: str, candidates: list[str] = CANDIDATES):
    return ground_completion(text, candidates, TRACKS, INDEX)


def test_catalog_tracks_maps_columns_and_nulls():
    assert TRACKS["t1"] == Track("t1", "Nick Drake", "Pink Moon", "folk", 1972, 0.2, 0.3)
    assert TRACKS["t4"] == Track("t4", "Joni Mitchell", "River", "", 1971, None, 0.2)
    assert list(TRACKS) == ["t1", "t2", "t3", "t4"]


def test_catalog_records_keep_every_column_with_none_for_nulls():
    rec = catalog_records(CATALOG)["t4"]
    assert rec["genre"] is None and rec["energy"] is None
    assert rec["subgenre"] == "singer-songwriter" and rec["valence"] == 0.2


def test_grounds_by_candidate_id():
    g = _ground("c1 | Nick Drake - Pink Moon\nc3 | daft punk - One more time")
    assert g.track_ids == ["t1", "t3"]
    assert g.grounded == [True, True]
    assert g.bad_lines == [] and g.n_answer_lines == 2
    assert g.candidate_ids == CANDIDATES


def test_candidate_id_with_wrong_artist_falls_back_to_catalog():
    # c2 is Low: the wrong artist does not ground via the id ...
    assert _ground("c2 | Nick Drake - Sunflower").track_ids == [None]
    # ... but a real catalog track named by artist and title is still grounded (to that track).
    assert _ground("c2 | Nick Drake - Pink Moon").track_ids == ["t1"]


def test_open_generation_lines_ground_by_artist_and_title():
    g = _ground("c0 | Joni Mitchell - River\nc0 | Joni Mitchell - Blue\nc0 | Daft Punk - One More Time", [])
    assert g.track_ids == ["t4", None, "t3"]


def test_out_of_range_candidate_id_is_ungrounded_unless_in_catalog():
    assert _ground("c9 | Someone - Unknown").track_ids == [None]
    assert _ground("c9 | Low - Sunflower").track_ids == ["t2"]


def test_bad_lines_and_empty_output():
    g = _ground("Here is your playlist:\nc1 | Nick Drake - Pink Moon\n\n1. Low - Sunflower")
    assert g.track_ids == ["t1"]
    assert g.bad_lines == ["Here is your playlist:", "1. Low - Sunflower"]
    assert g.n_answer_lines == 3
    empty = _ground("   \n")
    assert empty.lines == [] and empty.track_ids == [] and empty.n_answer_lines == 0


def test_without_catalog_index_only_candidate_ids_ground():
    g = ground_completion("c1 | Nick Drake - Pink Moon\nc0 | Joni Mitchell - River", CANDIDATES, TRACKS, None)
    assert g.track_ids == ["t1", None]


def test_unknown_candidate_raises():
    with pytest.raises(KeyError, match="t99"):
        _ground("c1 | Nick Drake - Pink Moon", ["t1", "t99"])

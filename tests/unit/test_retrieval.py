"""Lexical retrieval: request parsing, genre/mood/era matching, artist exclusion, catalog loading."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from playlist.retrieval import MOODS, Retriever, load_catalog, shift_era
from playlist.simulator.catalog import make_catalog


@pytest.fixture(scope="module")
def catalog() -> pd.DataFrame:
    return make_catalog(seed=0)


@pytest.fixture(scope="module")
def retriever(catalog: pd.DataFrame) -> Retriever:
    return Retriever(catalog)


def _rows(catalog: pd.DataFrame, ids: list[str]) -> pd.DataFrame:
    return catalog.set_index("track_id").loc[ids]


@pytest.mark.parametrize("genre", ["folk", "metal", "hip hop", "r&b", "jazz"])
def test_genre_request_returns_that_genre(catalog: pd.DataFrame, retriever: Retriever, genre: str) -> None:
    ids = retriever.retrieve(f"some {genre} please", k=20)
    assert len(ids) == 20
    assert set(_rows(catalog, ids)["genre"]) == {genre}


def test_aliases_and_subgenres(catalog: pd.DataFrame, retriever: Retriever) -> None:
    assert set(_rows(catalog, retriever.retrieve("rap for the gym"))["genre"]) == {"hip hop"}
    rows = _rows(catalog, retriever.retrieve("bossa nova", k=10))
    assert set(rows["genre"]) == {"latin"}
    assert (rows["subgenre"] == "bossa nova").mean() >= 0.8


def test_no_artist_excludes_that_artist(catalog: pd.DataFrame, retriever: Retriever) -> None:
    top_artist = _rows(catalog, retriever.retrieve("rock"))["artist"].iloc[0]
    for phrase in ("rock, no {a}", "rock without {a}", "rock but not {a}", "rock, nothing by {a}"):
        rows = _rows(catalog, retriever.retrieve(phrase.format(a=top_artist)))
        assert top_artist not in set(rows["artist"]), phrase
        assert set(rows["genre"]) == {"rock"}


def test_named_artist_without_negation_is_boosted(catalog: pd.DataFrame, retriever: Retriever) -> None:
    artist = catalog.sort_values("popularity")["artist"].iloc[0]  # an obscure one
    q = retriever.parse(f"more like {artist}")
    assert q.artists == [artist] and q.avoid_artists == []
    assert artist in set(_rows(catalog, retriever.retrieve(f"more like {artist}"))["artist"])


def test_mood_moves_energy(catalog: pd.DataFrame, retriever: Retriever) -> None:
    calm = _rows(catalog, retriever.retrieve("calm music"))["energy"].mean()
    energetic = _rows(catalog, retriever.retrieve("energetic music"))["energy"].mean()
    assert energetic - calm > 0.3


def test_era_request_prefers_its_decade(catalog: pd.DataFrame, retriever: Retriever) -> None:
    years = _rows(catalog, retriever.retrieve("90s rock", k=20))["year"]
    assert ((years >= 1990) & (years <= 1999)).mean() >= 0.5
    assert ((years >= 1980) & (years <= 2009)).mean() >= 0.8


@pytest.mark.parametrize(
    ("text", "era"),
    [
        ("90s rock", (1990, 1999)),
        ("'90s rock", (1990, 1999)),
        ("rock from the 2000s", (2000, 2009)),
        ("1970s soul", (1970, 1979)),
        ("jazz from the sixties", (1960, 1969)),
        ("folk from the 2010s", (2010, 2019)),
        ("older stuff", (1960, 1989)),
        ("80s pop, older stuff", (1960, 1979)),
        ("newer stuff", (2010, 2025)),
        ("just rock", None),
    ],
)
def test_parse_era(retriever: Retriever, text: str, era: tuple[int, int] | None) -> None:
    assert retriever.parse(text).era == era


def test_every_mood_phrase_parses_to_its_mood(retriever: Retriever) -> None:
    for name, mood in MOODS.items():
        for phrase in (*mood.words, *mood.occasions):
            assert retriever.parse(f"play something {phrase}").mood == name, phrase


def test_parse_length_and_history(retriever: Retriever) -> None:
    q = retriever.parse("more upbeat", history=["mellow folk, 12 songs, no Mara Lindqvist"])
    assert q.mood == "upbeat"  # the latest mood wins
    assert q.genres == ["folk"]
    assert retriever.parse("90s rock, 12 songs").length == 12
    assert retriever.parse("a 8-song playlist").length == 8


def test_shift_era() -> None:
    assert shift_era((1990, 1999), "older") == (1970, 1989)
    assert shift_era((1990, 1999), "newer") == (2000, 2019)
    assert shift_era((1960, 1969), "older") is None


def test_deterministic_tie_breaking_and_artist_cap() -> None:
    rows = [
        {"track_id": f"x{i:02d}", "title": f"T{i}", "artist": f"A{i % 3}", "genre": "folk", "subgenre": "celtic",
         "year": 2000, "energy": 0.5, "valence": 0.5, "popularity": 50}
        for i in (5, 3, 9, 1, 7, 2)
    ]  # fmt: skip
    retriever = Retriever(pd.DataFrame(rows), max_per_artist=1)
    assert retriever.retrieve("folk", k=10) == ["x01", "x02", "x03"]  # one per artist, smallest id first
    assert Retriever(pd.DataFrame(rows)).retrieve("folk", k=4) == ["x01", "x02", "x03", "x05"]


def test_unparsed_request_falls_back_to_popularity(catalog: pd.DataFrame, retriever: Retriever) -> None:
    ids = retriever.retrieve("surprise me", k=5)
    assert len(ids) == 5
    assert _rows(catalog, ids)["popularity"].min() >= np.percentile(catalog["popularity"], 90)


def test_load_catalog_jsonl_and_parquet(tmp_path: Path, catalog: pd.DataFrame) -> None:
    small = catalog.head(50)
    small.to_json(tmp_path / "catalog.jsonl", orient="records", lines=True)
    (tmp_path / "pq").mkdir()
    small.iloc[:25].to_parquet(tmp_path / "pq" / "part-0.parquet")
    small.iloc[25:].to_parquet(tmp_path / "pq" / "part-1.parquet")
    for path in (tmp_path / "catalog.jsonl", tmp_path / "pq"):
        loaded = load_catalog(path)
        pd.testing.assert_frame_equal(loaded.reset_index(drop=True), small.reset_index(drop=True))
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError):
        load_catalog(tmp_path / "empty")

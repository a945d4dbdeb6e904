"""The simulator: determinism, output schemas, intents and phrasing, policy signal, position bias."""

from __future__ import annotations

import json
import random
from collections import defaultdict
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from playlist.prompts import normalise, parse_playlist
from playlist.retrieval import MOODS, Retriever
from playlist.simulator import (
    CATALOG_COLUMNS,
    INTENT_KEYS,
    IntentSpace,
    User,
    build_playlist,
    corpus_texts,
    examination_probability,
    intent_fit,
    make_catalog,
    make_users,
    phrase_request,
    sample_intent,
    simulate,
    simulate_feedback,
)
from playlist.simulator.intents import CATEGORIES
from playlist.simulator.phrasing import phrase_refinement

RESPONSE_KEYS = ["response_id", "session_id", "user_id", "turn", "ts", "request", "history", "candidates",
                 "track_ids", "policy"]  # fmt: skip
INTERACTION_KEYS = ["response_id", "track_id", "position", "event", "ms_played", "track_ms", "ts", "text"]
EVENTS = {
    "play",
    "skip",
    "complete",
    "save",
    "like",
    "dislike",
    "remove",
    "thumbs_up",
    "thumbs_down",
    "refine",
}


def _read(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def _ts(text: str) -> datetime:
    assert text.endswith("Z"), text
    return datetime.fromisoformat(text)


@pytest.fixture(scope="module")
def logs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[dict[str, Any]]]:
    paths = simulate(tmp_path_factory.mktemp("sim"), seed=3, n_users=30)
    return {name: _read(path) for name, path in paths.items()}


@pytest.fixture(scope="module")
def big_logs(tmp_path_factory: pytest.TempPathFactory) -> pd.DataFrame:
    """Interactions joined with their response's policy, over ~700 responses."""
    paths = simulate(tmp_path_factory.mktemp("big"), seed=11, n_users=110)
    responses = pd.read_json(paths["responses"], lines=True)
    inter = pd.read_json(paths["interactions"], lines=True)
    return inter.merge(responses[["response_id", "policy"]], on="response_id")


def test_same_seed_same_bytes_other_seed_differs(tmp_path: Path) -> None:
    kwargs = {"n_users": 8, "sessions_per_user": 2, "n_artists": 60, "n_tracks": 400}
    a = simulate(tmp_path / "a", seed=1, **kwargs)
    b = simulate(tmp_path / "b", seed=1, **kwargs)
    c = simulate(tmp_path / "c", seed=2, **kwargs)
    assert set(a) == {"responses", "interactions", "intents", "catalog"}
    for name in a:
        assert a[name].name == f"{name}.jsonl"
        assert a[name].read_bytes() == b[name].read_bytes(), name
        assert a[name].read_bytes() != c[name].read_bytes(), name


def test_catalog_schema_and_realism(logs: dict[str, list[dict[str, Any]]]) -> None:
    cat = pd.DataFrame(logs["catalog"])
    assert all(list(row) == list(CATALOG_COLUMNS) for row in logs["catalog"])
    assert len(cat) == 2400 and cat["track_id"].is_unique
    assert cat["artist"].nunique() == 300
    assert cat["genre"].nunique() >= 12
    for col in ("energy", "valence", "danceability", "acousticness"):
        assert cat[col].between(0, 1).all()
    assert cat["year"].between(1960, 2025).all() and cat["popularity"].between(0, 100).all()
    assert (cat["duration_ms"] > 60_000).all()
    by_genre = cat.groupby("genre")[["energy", "acousticness", "year"]].mean()
    assert by_genre.loc["metal", "energy"] > by_genre.loc["classical", "energy"] + 0.4
    assert by_genre.loc["folk", "acousticness"] > by_genre.loc["electronic", "acousticness"] + 0.4
    assert by_genre.loc["hip hop", "year"] > by_genre.loc["soul", "year"] + 10
    # Zipf-like: a few tracks are very popular, most are not.
    assert cat["popularity"].max() == 100 and cat["popularity"].median() < 45
    assert (cat.groupby("artist")["title"].apply(lambda t: t.is_unique)).all()


def test_artist_names_are_never_read_as_constraints(logs: dict[str, list[dict[str, Any]]]) -> None:
    cat = pd.DataFrame(logs["catalog"])
    retriever = Retriever(cat)
    no_artists = Retriever(cat.assign(artist="x"))
    for artist in cat["artist"].unique():
        name_only = no_artists.parse(artist)
        assert not name_only.genres and name_only.mood is None and name_only.era is None, artist
        assert retriever.parse(f"no {artist}").avoid_artists == [artist]


def test_response_rows(logs: dict[str, list[dict[str, Any]]]) -> None:
    catalog_ids = {row["track_id"] for row in logs["catalog"]}
    by_turn: dict[tuple[str, int], list[dict[str, Any]]] = defaultdict(list)
    for row in logs["responses"]:
        assert list(row) == RESPONSE_KEYS
        assert isinstance(row["turn"], int) and isinstance(row["request"], str) and row["request"]
        assert len(row["candidates"]) == 20 and set(row["candidates"]) <= catalog_ids
        assert set(row["track_ids"]) <= set(row["candidates"]) and len(set(row["track_ids"])) == len(
            row["track_ids"]
        )
        _ts(row["ts"])
        by_turn[(row["session_id"], row["turn"])].append(row)
    assert len({r["response_id"] for r in logs["responses"]}) == len(logs["responses"])
    for variants in by_turn.values():
        # A/B: two responses to one request, from two policies, sharing the candidates.
        assert len(variants) == 2
        assert {v["policy"] for v in variants} == {"sim-a", "sim-b"}
        assert variants[0]["request"] == variants[1]["request"]
        assert variants[0]["candidates"] == variants[1]["candidates"]
        assert variants[0]["history"] == variants[1]["history"]


def test_sessions_in_time_order_with_history(logs: dict[str, list[dict[str, Any]]]) -> None:
    sessions: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in logs["responses"]:
        sessions[row["session_id"]].append(row)
    multi_turn = 0
    for rows in sessions.values():
        assert [_ts(r["ts"]) for r in rows] == sorted(_ts(r["ts"]) for r in rows)
        assert [r["turn"] for r in rows] == sorted(r["turn"] for r in rows)
        requests = [r["request"] for r in rows if r in rows[::2]]  # one per turn
        for turn, row in enumerate(rows[::2]):
            assert row["turn"] == turn and row["history"] == requests[:turn]
        multi_turn += len(rows) > 2
    assert multi_turn >= 5, "refinements should make some sessions multi-turn"


def test_interaction_rows(logs: dict[str, list[dict[str, Any]]]) -> None:
    responses = {r["response_id"]: r for r in logs["responses"]}
    next_request = {}
    for r in logs["responses"]:
        if r["turn"] > 0:
            next_request[(r["session_id"], r["turn"] - 1)] = r["request"]
    seen_events = set()
    for row in logs["interactions"]:
        assert list(row) == INTERACTION_KEYS
        assert row["event"] in EVENTS
        seen_events.add(row["event"])
        response = responses[row["response_id"]]
        assert _ts(row["ts"]) > _ts(response["ts"])
        assert 0 <= row["ms_played"] <= row["track_ms"]
        if row["position"] >= 0:
            assert response["track_ids"][row["position"]] == row["track_id"]
            assert row["track_ms"] > 0 and row["text"] is None
        else:
            assert row["event"] in {"thumbs_up", "thumbs_down", "refine"} and row["track_id"] is None
        if row["event"] == "refine":
            assert row["text"] == next_request[(response["session_id"], response["turn"])]
    assert seen_events == EVENTS


def test_intents_are_valid(logs: dict[str, list[dict[str, Any]]]) -> None:
    artists = {row["artist"] for row in logs["catalog"]}
    assert [r["response_id"] for r in logs["intents"]] == [r["response_id"] for r in logs["responses"]]
    for row in logs["intents"]:
        assert list(row) == ["response_id", "intent"]
        intent = json.loads(row["intent"])
        assert list(intent) == list(INTENT_KEYS)
        assert intent["category"] in {*CATEGORIES, "refine"}
        if intent["mood"]:
            mood = MOODS[intent["mood"]]
            assert intent["energy"] == (list(mood.energy) if mood.energy else None)
            assert intent["valence"] == (list(mood.valence) if mood.valence else None)
        else:
            assert intent["energy"] is None and intent["valence"] is None
        if intent["era"]:
            lo, hi = intent["era"]
            assert 1960 <= lo <= hi <= 2025
        assert intent["length"] is None or 1 <= intent["length"] <= 20
        assert set(intent["avoid_artists"]) <= artists


def test_phrasing_mentions_every_constraint() -> None:
    catalog = make_catalog(seed=5)
    retriever = Retriever(catalog)
    space = IntentSpace.from_catalog(catalog)
    users = make_users(catalog, 10, np.random.default_rng(5))
    rng = random.Random(5)
    texts = set()
    for i in range(400):
        intent = sample_intent(users[i % 10], space, rng)
        text = phrase_request(intent, rng)
        texts.add(text)
        for artist in intent["avoid_artists"]:
            assert artist in text
        if intent["length"]:
            assert str(intent["length"]) in text
        q = retriever.parse(text)
        assert q.genres == ([intent["genre"]] if intent["genre"] else []), text
        assert q.mood == intent["mood"], text
        assert q.era == (tuple(intent["era"]) if intent["era"] else None), text
        assert q.avoid_artists == intent["avoid_artists"], text
    assert len(texts) > 350  # varied phrasing, not a handful of templates
    assert phrase_refinement("avoid", "Mara Lindqvist", rng) and "Mara Lindqvist" in phrase_refinement(
        "avoid", "Mara Lindqvist", rng
    )
    assert retriever.parse(phrase_refinement("era", "older", rng)).era == (1960, 1989)


def test_better_policy_gets_better_feedback(big_logs: pd.DataFrame) -> None:
    df = big_logs.assign(
        early=(big_logs["event"] == "skip") & (big_logs["ms_played"] < 0.2 * big_logs["track_ms"])
    )
    per_response = df.groupby(["policy", "response_id"]).agg(
        saves=("event", lambda e: (e == "save").sum()),
        early=("early", "sum"),
        downs=("event", lambda e: (e == "thumbs_down").sum()),
    )
    means = per_response.groupby("policy").mean()
    assert means.loc["sim-a", "saves"] > means.loc["sim-b", "saves"]
    assert means.loc["sim-a", "early"] < 0.85 * means.loc["sim-b", "early"]
    assert means.loc["sim-a", "downs"] < means.loc["sim-b", "downs"]


def test_position_bias(big_logs: pd.DataFrame) -> None:
    tracks = big_logs[big_logs["position"] >= 0]
    examined = tracks.groupby("position")["response_id"].nunique()
    assert examined[0] > examined[3] > examined[6] > examined[9]
    assert examination_probability(0, 0.5) > examination_probability(5, 0.5) > examination_probability(9, 0.5)
    assert examination_probability(9, 1.0) > examination_probability(9, 0.0)


def test_simulate_feedback_reacts_to_fit() -> None:
    user = User("u1", {"folk": 0.9, "metal": 0.1}, 0.3, (1990, 2010), 0.5, ("Hated Band",))
    intent = {"category": "genre_mood", "genre": "folk", "mood": "mellow", "energy": [0.0, 0.45],
              "valence": None, "era": None, "length": None, "avoid_artists": ["Avoided"]}  # fmt: skip

    def track(i: int, artist: str, genre: str, energy: float) -> dict[str, Any]:
        return {"track_id": f"t{i}", "artist": artist, "genre": genre, "energy": energy, "valence": 0.5,
                "year": 2000, "duration_ms": 200_000}  # fmt: skip

    good = [track(i, "Good", "folk", 0.3) for i in range(5)]
    bad = [track(i, "Avoided" if i % 2 else "Loud", "metal", 0.95) for i in range(5)]
    assert intent_fit(intent, good[0]) == 1.0 and intent_fit(intent, bad[1]) == 0.0
    rng = random.Random(0)
    counts = {"good": defaultdict(int), "bad": defaultdict(int)}
    for _ in range(300):
        for name, rows in (("good", good), ("bad", bad)):
            events = simulate_feedback(user, intent, rows, rng, response_id="r1")
            assert [e["ts"] for e in events] == sorted(e["ts"] for e in events)
            for e in events:
                counts[name][e["event"]] += 1
    assert counts["good"]["complete"] > 3 * counts["bad"]["complete"]
    assert counts["good"]["save"] > 10 * max(1, counts["bad"]["save"])
    assert counts["bad"]["dislike"] > 10 * max(1, counts["good"]["dislike"])
    assert counts["good"]["thumbs_up"] > counts["bad"]["thumbs_up"]
    assert counts["bad"]["thumbs_down"] > counts["good"]["thumbs_down"]


def test_build_playlist_quality() -> None:
    intent = {"category": "genre", "genre": "folk", "mood": None, "energy": None, "valence": None,
              "era": None, "length": 3, "avoid_artists": []}  # fmt: skip
    cands = [{"track_id": f"t{i}", "artist": "A", "genre": "folk" if i % 4 == 0 else "rock", "energy": 0.5,
              "valence": 0.5, "year": 2000} for i in range(12)]  # fmt: skip
    assert build_playlist(cands, intent, 1.0, random.Random(0)) == ["t0", "t4", "t8"]
    random_picks = [build_playlist(cands, intent, 0.0, random.Random(s)) for s in range(20)]
    assert any(p != ["t0", "t4", "t8"] for p in random_picks)
    assert all(len(set(p)) == 3 for p in random_picks)


def test_corpus_texts() -> None:
    texts = list(corpus_texts(seed=0))
    assert 2000 <= len(texts) <= 10_000
    assert list(corpus_texts(seed=1, n_requests=50, n_prompts=5)) == list(
        corpus_texts(seed=1, n_requests=50, n_prompts=5)
    )
    assert any(t.startswith("c1 | ") and "\nc20 | " in t for t in texts)  # candidate blocks
    answers = [t for t in texts if t.startswith("c") and "Request:" not in t and parse_playlist(t).valid]
    assert answers
    assert any("Request:" in t and "Candidates:" in t for t in texts)
    assert any(normalise(t).startswith("no more") or "less of" in t for t in texts)

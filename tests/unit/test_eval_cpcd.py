"""CPCD retrieval data: the hash split, per-turn queries and seeds, the BM25 baseline (real data when present)."""

from __future__ import annotations

from pathlib import Path

import pytest

from evaluation.cpcd import (
    BM25Ranker,
    CatalogTrack,
    answer_ranking,
    is_heldout,
    liked_per_turn,
    load_conversations,
    shown_per_turn,
    track_catalog,
    turn_prompt,
    turn_query,
)
from evaluation.tasks.goal_ranking import conversation_scores

DATA = (
    Path(__file__).resolve().parents[2]
    / ".."
    / "shared"
    / "data"
    / "cpcd"
    / "cpcd_v1.dialogs.dev.train.jsonl"
)

CONVERSATION = {
    "id": "c1",
    "turns": [
        {"user_query": "upbeat dance party", "search_results": [["a", "b"], ["b", "c"]], "liked_results": ["a"],
         "disliked_results": ["d"]},
        {"user_query": "more like Hey Ya", "search_results": [], "liked_results": [], "disliked_results": []},
    ],
    "tracks": {
        "a": {"track_titles": "Hey Ya!", "track_artists": ["Outkast"], "track_release_titles": "Speakerboxxx"},
        "b": {"track_titles": "Uptown Funk", "track_artists": ["Mark Ronson", "Bruno Mars"]},
        "d": {"track_titles": "", "track_artists": ["Nobody"]},
    },
    "goal_playlist": ["a", "b"],
}  # fmt: skip


def test_split_is_a_stable_hash_of_the_id() -> None:
    ids = [f"conv{i:04d}" for i in range(2000)]
    held = [i for i in ids if is_heldout(i)]
    assert 0.17 < len(held) / len(ids) < 0.23
    assert held == [i for i in ids if is_heldout(i)]
    assert set(held) <= {i for i in ids if is_heldout(i, 0.5)}  # a larger fraction only adds conversations


def test_queries_seeds_shown_and_catalog() -> None:
    assert turn_query(CONVERSATION, 1) == "upbeat dance party more like Hey Ya"
    assert liked_per_turn(CONVERSATION) == [["a"], []]
    assert shown_per_turn(CONVERSATION) == [["a", "b", "c", "d"], []]
    catalog = track_catalog([CONVERSATION])
    assert catalog == [
        CatalogTrack("a", "Hey Ya!", "Outkast", "Speakerboxxx"),
        CatalogTrack("b", "Uptown Funk", "Mark Ronson, Bruno Mars", ""),
    ]  # d has no title


def test_bm25_ranks_matching_words_first_and_breaks_ties_by_id() -> None:
    ranker = BM25Ranker([*track_catalog([CONVERSATION]), CatalogTrack("e", "Other Song", "Someone", "")])
    assert ranker.rank("bruno mars", k=3)[0] == "b"
    assert ranker.rank("hey ya", k=1) == ["a"]
    assert ranker.rank("nothing matches", k=3) == ["a", "b", "e"]
    assert ranker.rank("hey ya", k=5, among=["e", "b", "zzz"]) == ["b", "e"]


def test_turn_prompt_and_answer_ranking() -> None:
    shortlist = track_catalog([CONVERSATION])  # a (Hey Ya!), b (Uptown Funk)
    prompt = turn_prompt(CONVERSATION, 1, shortlist)
    assert [m["role"] for m in prompt] == ["system", "user"]
    user = prompt[1]["content"]
    assert user.startswith("Request: more like Hey Ya\n")
    assert "- upbeat dance party" in user  # the earlier turn's words are the history
    assert "c1 | Outkast - Hey Ya!" in user and "c2 | Mark Ronson, Bruno Mars - Uptown Funk" in user
    answer = "\n".join([
        "c2 | Mark Ronson, Bruno Mars - Uptown Funk",
        "c1 | Outkast - Invented Title",  # right id, wrong title: not a pick
        "c9 | Outkast - Hey Ya!",  # wrong id, but an exact artist and title of a candidate
        "c2 | Mark Ronson, Bruno Mars - Uptown Funk",  # repeated: counted once
        "some chatter",
    ])  # fmt: skip
    assert answer_ranking(answer, shortlist) == ["b", "a"]
    assert answer_ranking("", shortlist) == []


@pytest.mark.skipif(
    not DATA.exists(), reason=f"CPCD data not present at {DATA} (../shared/data is workplace-only)"
)
def test_real_cpcd_heldout_split_and_scoring() -> None:
    conversations = load_conversations(DATA)
    held = [c for c in conversations if is_heldout(c["id"])]
    assert len(conversations) == 400
    assert 60 <= len(held) <= 100
    # Ranking the goal playlist itself scores a perfect hit@1 on every scored turn.
    conv = held[0]
    perfect = [list(conv["goal_playlist"])] * len(conv["turns"])
    scores = conversation_scores(perfect, conv["goal_playlist"], liked_per_turn(conv), ks=(1, 20))
    assert scores is not None and scores["hit@1"] == 1.0
    catalog_ids = {t.track_id for t in track_catalog(conversations)}
    assert set(conv["goal_playlist"]) <= catalog_ids  # every goal track has metadata

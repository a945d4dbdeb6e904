"""The learned reranker: features of a request and its candidates, graded labels, training users only."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd
import pytest

from data_prep.settings import DEFAULT_WEIGHTS, RewardSettings
from encore.config import EvalConfig
from evaluation.baselines import score_baselines
from evaluation.reranker import (
    FEATURES,
    candidate_features,
    fit_reranker,
    grade,
    ranking_groups,
    track_rewards,
    train_reranker,
)
from playlist.grounding import catalog_records, catalog_tracks
from playlist.keys import split_of
from playlist.retrieval import Retriever

# Four folk and four rock tracks; the rock ones louder and newer, so that genre is not the only cue.
CATALOG = pd.DataFrame(
    {
        "track_id": ["f1", "f2", "f3", "f4", "r1", "r2", "r3", "r4"],
        "title": ["Pink Moon", "River", "Sunflower", "Fotheringay", "Search", "Loose", "Gimme", "Kick"],
        "artist": ["Nick Drake", "Joni Mitchell", "Low", "Sandy Denny", "Stooges", "MC5", "Patti", "Wire"],
        "genre": ["folk"] * 4 + ["rock"] * 4,
        "subgenre": ["british folk", "singer songwriter", "slowcore", "british folk", *["punk"] * 4],
        "year": [1972, 1971, 1975, 1970, 1973, 1969, 1978, 1977],
        "energy": [0.2, 0.3, 0.3, 0.25, 0.95, 0.9, 0.85, 0.9],
        "valence": [0.3, 0.2, 0.4, 0.35, 0.5, 0.6, 0.4, 0.5],
        "duration_ms": [120_000, 240_000, 240_000, 200_000, 200_000, 180_000, 210_000, 190_000],
        "popularity": [60, 70, 40, 30, 50, 45, 55, 35],
    }
)
TRAIN_USERS = [f"{600 + i:016x}" for i in range(2)]  # bucket 600, 601 of 1000: train at eval_fraction 0.5
EVAL_USERS = [f"{1 + i:016x}" for i in range(2)]  # buckets 1, 2: eval
_DEFAULTS = RewardSettings()
REWARDS = {
    "weights": _DEFAULTS.resolved_weights(),
    "early_skip": _DEFAULTS.early_skip,
    "track_clip": _DEFAULTS.track_clip,
}


def _log(users: list[str], n: int, fitting_saved: bool, tag: str) -> tuple[list[dict], list[dict]]:
    """``n`` responses per user, each a folk or rock request showing one folk and one rock track (in
    turns first): the track of the asked genre saved and the other skipped, or the opposite."""
    responses, interactions = [], []
    for user in users:
        for i in range(n):
            asked = "folk" if i % 2 else "rock"
            folk, rock = f"f{1 + i % 4}", f"r{1 + (i // 2) % 4}"
            shown = [folk, rock] if (i // 2) % 2 else [rock, folk]
            rid = f"{tag}-{user}-{i}"
            responses.append(
                {
                    "response_id": rid,
                    "user_key": user,
                    "request": f"{asked}, 2 songs",
                    "history": [],
                    "candidates": shown,
                    "track_ids": shown,
                }
            )
            for pos, track in enumerate(shown):
                liked = (track[0] == asked[0]) == fitting_saved
                events = [("complete", 200_000), ("save", 100_000)] if liked else [("skip", 5_000)]
                interactions += [
                    {
                        "response_id": rid,
                        "track_id": track,
                        "position": pos,
                        "event": event,
                        "ms_played": ms,
                        "track_ms": 200_000,
                    }
                    for event, ms in events
                ]
    return responses, interactions


def _row(request: str, candidates: list[str], prompt_id: str = "p") -> dict:
    return {
        "prompt_id": prompt_id,
        "request": request,
        "history": [],
        "candidates": candidates,
        "intent": None,
    }


def _write_prepared(
    root: Path, responses: list[dict], interactions: list[dict], eval_users: list[str]
) -> Path:
    for name, frame in {
        "validated/responses": pd.DataFrame(responses),
        "validated/interactions": pd.DataFrame(interactions),
        "validated/catalog": CATALOG,
        "eval": pd.DataFrame(
            {"prompt_id": [f"e{i}" for i in range(len(eval_users))], "user_key": eval_users}
        ),
    }.items():
        (root / name).mkdir(parents=True)
        frame.to_parquet(root / name / "part-0.parquet")
    manifest = {"config": {"eval_fraction": 0.5, "rewards": {"weights": {}, "early_skip": 0.25}}}
    (root / "manifest.json").write_text(json.dumps(manifest))
    return root


def _trained(responses: list[dict], interactions: list[dict], seed: int = 0):
    rewards = track_rewards(pd.DataFrame(interactions), DEFAULT_WEIGHTS, early_skip=0.25, clip=3.0)
    parser = Retriever(CATALOG)
    groups = ranking_groups(pd.DataFrame(responses), rewards, CATALOG, parser, set(TRAIN_USERS))
    return fit_reranker(groups, parser, seed)


def test_features_of_a_request_and_its_candidates() -> None:
    query = Retriever(CATALOG).parse("mellow folk from the 70s, 2 songs, no Low")
    records = catalog_records(CATALOG)
    frame = candidate_features(query, [records["f1"], records["r1"], records["f3"]], [0, 1, None])
    assert list(frame.columns) == list(FEATURES)
    folk, rock, avoided = (frame.iloc[i].to_dict() for i in range(3))
    assert folk["genre_match"] == 1.0 and rock["genre_match"] == 0.0
    assert folk["energy_closeness"] == 1.0  # 0.2 inside mellow's (0, 0.45)
    assert rock["energy_closeness"] == 0.0  # 0.95 is 0.5 above it, past the 0.25 scale
    assert folk["era_closeness"] == rock["era_closeness"] == 1.0  # 1972 and 1973
    assert (folk["avoided_artist"], avoided["avoided_artist"]) == (0.0, 1.0)
    assert folk["requested_length"] == 2.0
    assert (folk["energy"], folk["valence"], folk["year"], folk["popularity"]) == (0.2, 0.3, 1972.0, 60.0)
    assert (folk["position"], rock["position"]) == (0.0, 1.0) and math.isnan(avoided["position"])
    # What the request does not say is missing, not a mismatch: no subgenre, artist or valence range.
    for name in ("subgenre_match", "artist_match", "valence_closeness"):
        assert math.isnan(folk[name]), name


def test_rewards_use_the_prep_weights_and_grade_skips_plays_completes_and_saves() -> None:
    rows = [
        ("a", "skip", 5_000),  # early: -1
        ("b", "skip", 150_000),  # late: -0.25
        ("c", "play", 100_000),  # 0
        ("d", "complete", 200_000),  # 1
        ("e", "complete", 200_000),
        ("e", "save", 100_000),  # 1 + 2
    ]
    log = pd.DataFrame(
        [
            {"response_id": "r", "track_id": t, "event": e, "ms_played": ms, "track_ms": 200_000}
            for t, e, ms in rows
        ]
    )
    rewards = track_rewards(log, DEFAULT_WEIGHTS, early_skip=0.25, clip=3.0).sort_values("track_id")
    assert rewards["reward"].tolist() == [-1.0, -0.25, 0.0, 1.0, 3.0]
    assert grade(rewards["reward"]).tolist() == [0, 0, 1, 2, 3]


def test_the_reranker_puts_the_fitting_candidate_first_after_learning_from_saves_and_skips() -> None:
    reranker = _trained(*_log(TRAIN_USERS, 20, fitting_saved=True, tag="t"))
    tracks, records = catalog_tracks(CATALOG), catalog_records(CATALOG)
    # The fitting track is shown second both times: the ranker moves it up.
    assert reranker.playlist(_row("folk, 2 songs", ["r2", "f3"]), tracks, records).splitlines()[0] == (
        "c2 | Low - Sunflower"
    )
    assert reranker.playlist(_row("rock, 2 songs", ["f2", "r4"]), tracks, records).startswith("c2 | Wire")
    assert reranker.playlist(_row("folk", []), tracks, records) is None


def test_training_reads_only_the_training_users_logs(tmp_path: Path) -> None:
    assert {split_of(u, 0.5) for u in TRAIN_USERS} == {"train"}
    assert {split_of(u, 0.5) for u in EVAL_USERS} == {"eval"}
    train = _log(TRAIN_USERS, 20, fitting_saved=True, tag="t")
    # Three times as many held-out logs that teach the opposite: were they read, the order would flip.
    heldout = _log(EVAL_USERS, 60, fitting_saved=False, tag="h")
    prepared = _write_prepared(tmp_path, train[0] + heldout[0], train[1] + heldout[1], EVAL_USERS)
    reranker, figures = train_reranker(prepared, seed=0, **REWARDS)
    assert reranker is not None
    assert (figures["train_users"], figures["train_groups"], figures["train_rows"]) == (2, 40, 80)
    assert figures["heldout_groups"] == 120
    answer = reranker.playlist(
        _row("folk, 2 songs", ["r2", "f3"]), catalog_tracks(CATALOG), catalog_records(CATALOG)
    )
    assert answer.startswith("c2 | Low")
    # Held-out users reward the other track: the learned order is worse than the shown one on them.
    assert figures["heldout_ndcg_10"] < figures["heldout_ndcg_10_retrieval"]


def test_eval_rows_of_a_training_side_user_stop_the_training(tmp_path: Path) -> None:
    responses, interactions = _log(TRAIN_USERS, 4, fitting_saved=True, tag="t")
    prepared = _write_prepared(tmp_path, responses, interactions, [TRAIN_USERS[0]])
    with pytest.raises(ValueError, match="training side"):
        train_reranker(prepared, seed=0, **REWARDS)


def test_same_seed_same_model_and_answers() -> None:
    log = _log(TRAIN_USERS, 20, fitting_saved=True, tag="t")
    one, two = _trained(*log, seed=3), _trained(*log, seed=3)
    assert one.model.booster_.model_to_string() == two.model.booster_.model_to_string()
    tracks, records = catalog_tracks(CATALOG), catalog_records(CATALOG)
    rows = [_row("folk, 2 songs", ["r1", "f1", "r3", "f4"]), _row("rock", ["f2", "r2", "f3"])]
    assert [one.playlist(r, tracks, records) for r in rows] == [
        two.playlist(r, tracks, records) for r in rows
    ]


def test_the_reranker_is_scored_beside_retrieval_and_the_oracle_by_default() -> None:
    assert EvalConfig().baselines == ["retrieval", "reranker", "oracle"]
    reranker = _trained(*_log(TRAIN_USERS, 20, fitting_saved=True, tag="t"))
    intent = {"category": "genre", "genre": "folk", "mood": None, "energy": None, "valence": None}
    rows = [
        {
            **_row("folk, 2 songs", ["r1", "r2", "f1", "f2"]),
            "intent": json.dumps({**intent, "era": None, "length": 2, "avoid_artists": []}),
        }
    ]
    names = ["retrieval", "reranker", "oracle"]
    scored = score_baselines(names, rows, CATALOG, reranker=reranker.playlist)
    assert list(scored) == names
    assert scored["reranker"].metrics["fulfillment"] > scored["retrieval"].metrics["fulfillment"]
    assert "reranker" not in score_baselines(names, rows, CATALOG)  # no trained reranker: left out

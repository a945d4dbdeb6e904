"""The flywheel's reward model (a learned reranker over a playlist, times the checks) and its pair rules."""

from __future__ import annotations

from dataclasses import replace

import pandas as pd
import pytest

from data_prep.settings import DEFAULT_WEIGHTS
from encore.flywheel.pairs import STRATEGY, best_worst, round_pairs
from encore.flywheel.reward import PlaylistReward
from evaluation.reranker import reranker_from_logs
from playlist.grounding import catalog_records, catalog_tracks
from playlist.prompts import catalog_key_index, render_prompt

CATALOG = pd.DataFrame(
    {
        "track_id": ["f1", "f2", "f3", "r1", "r2", "r3"],
        "title": ["Pink Moon", "River", "Sunflower", "Search", "Loose", "Kick"],
        "artist": ["Nick Drake", "Joni Mitchell", "Low", "Stooges", "MC5", "Wire"],
        "genre": ["folk"] * 3 + ["rock"] * 3,
        "subgenre": ["british folk", "singer songwriter", "slowcore", *["punk"] * 3],
        "year": [1972, 1971, 1975, 1973, 1969, 1977],
        "energy": [0.2, 0.3, 0.3, 0.95, 0.9, 0.9],
        "valence": [0.3, 0.2, 0.4, 0.5, 0.6, 0.5],
        "duration_ms": [200_000] * 6,
        "popularity": [60, 70, 40, 50, 45, 35],
    }
)
TRAIN = [f"{600 + i:016x}" for i in range(3)]  # train at eval_fraction 0.5
CANDIDATES = ["r1", "f1", "r2", "f2"]


def _logs() -> tuple[pd.DataFrame, pd.DataFrame]:
    """Folk and rock requests over folk and rock tracks: the asked genre's tracks saved, the others skipped."""
    responses, interactions = [], []
    for user in TRAIN:
        for i in range(16):
            asked = "folk" if i % 2 else "rock"
            shown = ["f1", "r1", "f2", "r2", "f3", "r3"][i % 3 :] + ["f1", "r1", "f2", "r2", "f3", "r3"][
                : i % 3
            ]
            rid = f"{user}-{i}"
            responses.append(
                {"response_id": rid, "user_key": user, "request": f"{asked}, 2 songs", "history": [],
                 "candidates": shown, "track_ids": shown}
            )  # fmt: skip
            for pos, track in enumerate(shown):
                fits = (track[0] == "f") == (asked == "folk")
                events = [("complete", 200_000), ("save", 0)] if fits else [("skip", 5_000)]
                interactions += [
                    {"response_id": rid, "track_id": track, "position": pos, "event": e, "ms_played": ms,
                     "track_ms": 200_000}
                    for e, ms in events
                ]  # fmt: skip
    return pd.DataFrame(responses), pd.DataFrame(interactions)


@pytest.fixture(scope="module")
def reward() -> PlaylistReward:
    responses, interactions = _logs()
    reranker, figures = reranker_from_logs(
        responses,
        interactions,
        CATALOG,
        set(TRAIN),
        0,
        weights=DEFAULT_WEIGHTS,
        early_skip=0.25,
        track_clip=3.0,
    )
    assert reranker is not None and figures["train_users"] == 3
    tracks = catalog_tracks(CATALOG)
    return PlaylistReward(
        reranker, tracks, catalog_records(CATALOG), catalog_key_index(list(tracks.values()))
    )


def _answer(*cids: str) -> str:
    names = {
        "c1": "Stooges - Search",
        "c2": "Nick Drake - Pink Moon",
        "c3": "MC5 - Loose",
        "c4": "Joni Mitchell - River",
    }
    return "\n".join(f"{c} | {names[c]}" for c in cids)


def test_what_the_logs_say_fits_is_worth_more(reward: PlaylistReward) -> None:
    worth = reward.worth("folk, 2 songs", [], CANDIDATES)
    assert min(worth["f1"], worth["f2"]) > max(worth["r1"], worth["r2"])
    assert max(worth.values()) == 1.0 and min(worth.values()) == 0.0  # scaled over the candidates
    folk = reward.score("folk, 2 songs", [], CANDIDATES, _answer("c2", "c4"))
    rock = reward.score("folk, 2 songs", [], CANDIDATES, _answer("c1", "c3"))
    assert folk > rock
    assert reward.score("rock, 2 songs", [], CANDIDATES, _answer("c1", "c3")) > rock  # the request decides


def test_a_repeat_or_a_line_outside_the_candidates_is_worth_nothing_and_length_counts(
    reward: PlaylistReward,
) -> None:
    worth = reward.worth("folk, 2 songs", [], CANDIDATES)
    two = reward.score("folk, 2 songs", [], CANDIDATES, _answer("c2", "c4"))
    assert two == pytest.approx((worth["f1"] + worth["f2"]) / 2)
    assert reward.score("folk, 2 songs", [], CANDIDATES, _answer("c2", "c2")) == pytest.approx(
        worth["f1"] / 2
    )
    invented = _answer("c2") + "\nc9 | Nobody - Nothing"
    assert reward.score("folk, 2 songs", [], CANDIDATES, invented) == pytest.approx(worth["f1"] / 2)
    # One line where two were asked for: its worth, times length_score(1, 2) = 0.5.
    assert reward.score("folk, 2 songs", [], CANDIDATES, _answer("c2")) == pytest.approx(worth["f1"] * 0.5)
    assert reward.score("folk, 2 songs", [], CANDIDATES, "") == 0.0


def test_a_second_track_of_an_artist_is_worth_less_when_asked(reward: PlaylistReward) -> None:
    worth = reward.worth("folk, 2 songs", [], CANDIDATES)
    # River by Nick Drake too: the answer names one artist twice.
    tracks = {**reward.tracks, "f2": replace(reward.tracks["f2"], artist="Nick Drake")}
    same = replace(reward, tracks=tracks)
    assert same.score("folk, 2 songs", [], CANDIDATES, _answer("c2", "c4")) == pytest.approx(
        (worth["f1"] + worth["f2"]) / 2
    )  # off by default
    halved = replace(reward, tracks=tracks, repeat_artist_worth=0.5)
    assert halved.score("folk, 2 songs", [], CANDIDATES, _answer("c2", "c4")) == pytest.approx(
        (worth["f1"] + 0.5 * worth["f2"]) / 2
    )
    assert replace(reward, repeat_artist_worth=0.5).score(
        "folk, 2 songs", [], CANDIDATES, _answer("c2", "c4")
    ) == pytest.approx((worth["f1"] + worth["f2"]) / 2)  # two artists: nothing to halve


def test_a_prepared_pairs_prompt_is_read_back_to_its_candidates(reward: PlaylistReward) -> None:
    tracks = catalog_tracks(CATALOG)
    prompt = render_prompt("folk, 2 songs", [], [tracks[t] for t in CANDIDATES])
    assert reward.score_pair_side(prompt, _answer("c2", "c4"), []) == reward.score(
        "folk, 2 songs", [], CANDIDATES, _answer("c2", "c4")
    )


def test_best_against_worst_within_the_length_tolerance() -> None:
    texts = ["a\nb", "a\nb\nc\nd\ne", "x\ny", "a\nb"]
    assert best_worst(texts, [0.9, 0.1, 0.4, 0.9], margin=0.1, length_tolerance=2) == (
        0,
        2,
    )  # 1: 3 lines longer
    assert best_worst(texts, [0.9, 0.1, 0.4, 0.9], margin=0.1, length_tolerance=3) == (0, 1)


def test_ties_near_ties_and_identical_answers_give_no_pair() -> None:
    assert best_worst(["a", "b"], [0.5, 0.46], margin=0.05, length_tolerance=2) is None
    assert best_worst(["a", "a", "a"], [0.9, 0.9, 0.9], margin=0.0, length_tolerance=2) is None
    assert best_worst(["a", "b"], [0.5, 0.4], margin=0.05, length_tolerance=2) == (0, 1)


def test_round_pairs_follow_the_prepared_pairs_schema() -> None:
    prompts = [{"prompt": [{"role": "user", "content": "q"}], "prompt_id": "p1", "user_key": "u1"},
               {"prompt": [{"role": "user", "content": "q2"}], "prompt_id": "p2", "user_key": "u2"}]  # fmt: skip
    pairs = round_pairs(
        prompts,
        [["a", "b"], ["c", "c"]],
        [[0.2, 0.8], [0.5, 0.5]],
        margin=0.1,
        length_tolerance=2,
        round_no=1,
    )
    assert len(pairs) == 1
    (pair,) = pairs
    assert pair["chosen"] == [{"role": "assistant", "content": "b"}]
    assert pair["rejected"] == [{"role": "assistant", "content": "a"}]
    assert (pair["prompt_id"], pair["split"], pair["strategy"]) == ("p1", "train", STRATEGY)
    assert pair["margin"] == pytest.approx(0.6)

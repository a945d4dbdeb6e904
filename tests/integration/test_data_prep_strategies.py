"""Each preference-pair strategy, and finalize_pairs, on tiny inline frames compared as whole frames."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest
from pyspark.sql import DataFrame, Row
from pyspark.testing import assertDataFrameEqual, assertSchemaEqual

from data_prep import schemas
from data_prep.pairs import finalize_pairs
from data_prep.strategies import edit_pairs, liked_disliked_pairs, refinement_pairs, response_pairs
from playlist.prompts import Track, render_playlist, render_prompt

pytestmark = pytest.mark.integration

TRACK = (
    "struct<track_id:string,artist:string,title:string,genre:string,year:int,energy:double,valence:double>"
)
MESSAGES = "array<struct<role:string,content:string>>"
SCORED = (
    "response_id string, session_id string, turn int, prompt_id string, user_key string, split string, "
    f"track_ids array<string>, candidates array<string>, candidates_tracks array<{TRACK}>, "
    f"track_ids_tracks array<{TRACK}>, reward double, prompt {MESSAGES}, completion {MESSAGES}"
)
INTERACTIONS = "response_id string, track_id string, event string, ms_played long, track_ms long"
VALUES = "response_id string, track_id string, position int, reward double, value double"
MS = 200_000  # every track's length


def _track(tid: str) -> Track:
    i = int(tid[1:])
    return Track(tid, f"Artist {i}", f"Song {i}", "folk", 2000 + i, i / 10)


def _tracks(ids: list[str]) -> list[Track]:
    return [_track(t) for t in ids]


def _answer(ids: list[str], candidates: list[str]) -> list[Row]:
    return [Row(role="assistant", content=render_playlist(_tracks(ids), _tracks(candidates)))]


def _prompt(request: str, candidates: list[str]) -> list[Row]:
    return [Row(**m) for m in render_prompt(request, [], _tracks(candidates))]


def _scored_row(
    rid: str, session: str, turn: int, ids: list[str], candidates: list[str], reward: float, **kw: Any
) -> tuple:
    request = kw.get("request", f"request {session}/{turn}")
    return (
        rid,
        session,
        turn,
        kw.get("prompt_id", f"{session}/{turn}"),
        kw.get("user_key", "u1"),
        kw.get("split", "train"),
        ids,
        candidates,
        [Row(**vars(t)) for t in _tracks(candidates)],
        [Row(**vars(t)) for t in _tracks(ids)],
        reward,
        _prompt(request, candidates),
        _answer(ids, candidates),
    )


def _pair_id(prompt_id: str, chosen: str, rejected: str) -> str:
    """As data_prep.splits.pair_id: sha256 of the three ids joined by the unit separator, 16 hex digits."""
    return hashlib.sha256("\x1f".join([prompt_id, chosen, rejected]).encode()).hexdigest()[:16]


def _pair(
    prompt: list[Row],
    chosen: list[Row],
    rejected: list[Row],
    ids: tuple[str, str, str],
    rewards: tuple[float, float],
    strategy: str,
    user_key: str = "u1",
    split: str = "train",
) -> Row:
    prompt_id, chosen_id, rejected_id = ids
    return Row(
        prompt=prompt,
        chosen=chosen,
        rejected=rejected,
        pair_id=_pair_id(prompt_id, chosen_id, rejected_id),
        prompt_id=prompt_id,
        user_key=user_key,
        reward_chosen=rewards[0],
        reward_rejected=rewards[1],
        margin=round(rewards[0] - rewards[1], 6),
        strategy=strategy,
        split=split,
    )


def _check(got: DataFrame, expected: list[Row]) -> None:
    assertSchemaEqual(got.schema, schemas.PAIRS)
    assertDataFrameEqual(got, expected)


def test_response_pairs(spark) -> None:
    cands, other = ["t1", "t2", "t3", "t4", "t5", "t6"], ["t1", "t2", "t3", "t4", "t5"]
    scored = spark.createDataFrame(
        [
            _scored_row("rA", "s1", 0, ["t1", "t2"], cands, 1.0),
            _scored_row("rB", "s1", 0, ["t2", "t1"], cands, 0.6),  # the same tracks in another order
            _scored_row("rC", "s1", 0, ["t3"], cands, 0.6),  # ties rB: no pair between them
            _scored_row("rE", "s1", 0, ["t1", "t2"], cands, 0.7),  # reads as rA: never paired with it
            _scored_row("rG", "s1", 0, ["t5", "t6"], cands, 0.4),
            # Other candidates: its prompt differs, so it pairs with nobody although it leads everyone.
            _scored_row("rD", "s1", 0, ["t4"], other, 2.0),
            # Same prompt id but another user (cannot happen with keyed ids; the join still requires it).
            _scored_row("rH", "s1", 0, ["t4"], cands, -1.0, user_key="u2"),
        ],
        SCORED,
    )
    prompt, p = _prompt("request s1/0", cands), "s1/0"
    a = lambda ids: _answer(ids, cands)  # noqa: E731
    # Margin >= 0.3: rA>rB 0.4, rA>rC 0.4, rA>rG 0.6, rE>rG 0.3 (0.7 - 0.4 = 0.29999999999999993 in floats);
    # rB/rC/rE vs each other lead by at most 0.1, and rB>rG, rC>rG by 0.2.
    # rA>rG and rE>rG read the same; only finalize_pairs removes such duplicates.
    _check(
        response_pairs(scored, min_margin=0.3),
        [
            _pair(prompt, a(["t1", "t2"]), a(["t2", "t1"]), (p, "rA", "rB"), (1.0, 0.6), "response"),
            _pair(prompt, a(["t1", "t2"]), a(["t3"]), (p, "rA", "rC"), (1.0, 0.6), "response"),
            _pair(prompt, a(["t1", "t2"]), a(["t5", "t6"]), (p, "rA", "rG"), (1.0, 0.4), "response"),
            _pair(prompt, a(["t1", "t2"]), a(["t5", "t6"]), (p, "rE", "rG"), (0.7, 0.4), "response"),
        ],
    )


EDIT_CANDIDATES = [f"t{i}" for i in range(1, 9)]
LONG_LIST = [f"t{i}" for i in range(1, 11)]


def _edit_inputs(spark) -> tuple[DataFrame, DataFrame, DataFrame]:
    """Scored responses, interactions and track values for the edit strategy (see the tests below)."""
    cands, long_list = EDIT_CANDIDATES, LONG_LIST
    scored = spark.createDataFrame(
        [
            _scored_row("r1", "s1", 0, ["t1", "t2", "t3", "t4"], cands, 0.0),
            _scored_row("r2", "s1", 1, ["t5", "t6"], cands, 0.0),
            _scored_row("r3", "s2", 0, ["t7", "t8", "t6"], cands, 0.0, user_key="u2"),
            _scored_row("r4", "s3", 0, long_list, long_list, 0.0, user_key="u3"),
            _scored_row("r5", "s4", 0, ["t1", "t2", "t3"], cands, 0.0, user_key="u4"),
        ],
        SCORED,
    )
    interactions = spark.createDataFrame(
        [
            ("r1", "t1", "skip", 10_000, MS),  # 5% played: early, negative
            ("r1", "t2", "complete", MS, MS),
            ("r1", "t3", "skip", 150_000, MS),  # 75% played: late, kept
            ("r1", "t4", "dislike", 50_000, MS),
            ("r2", "t5", "save", 90_000, MS),  # saved in r1's session: r1's spare
            ("r2", "t6", "complete", MS, MS),  # completed, not saved: no spare
            ("r3", "t7", "remove", 0, MS),
            ("r3", "t8", "save", 90_000, MS),  # another session's save never reaches r1
            ("r3", "t6", "skip", None, MS),  # unknown play time: early, as in the rewards
            ("r4", "t1", "skip", 10_000, MS),
            *[("r4", f"t{i}", "complete", MS, MS) for i in range(2, 11)],
            ("r5", "t1", "complete", MS, MS),
            ("r5", "t2", "complete", MS, MS),
            ("r5", "t3", "dislike", 50_000, MS),  # the last track is the only negative
        ],
        INTERACTIONS,
    )
    values = spark.createDataFrame(
        [
            ("r1", "t1", 0, -1.0, -1.0),
            ("r1", "t2", 1, 1.0, 1.0),
            ("r1", "t3", 2, -0.25, -0.25),
            ("r1", "t4", 3, -2.0, -2.0),
            ("r2", "t5", 0, 2.0, 2.0),
            ("r2", "t6", 1, 1.0, 1.0),
            ("r3", "t7", 0, -2.0, -2.0),
            ("r3", "t8", 1, 2.0, 2.0),
            ("r3", "t6", 2, -1.0, -1.0),
            ("r4", "t1", 0, -1.0, -1.0),
            *[("r4", f"t{i}", i - 1, 1.0, 1.0) for i in range(2, 11)],
            ("r5", "t1", 0, 1.0, 1.0),
            ("r5", "t2", 1, 1.0, 1.0),
            ("r5", "t3", 2, -2.0, -2.0),
        ],
        VALUES,
    )
    return scored, interactions, values


def test_edit_pairs(spark) -> None:
    scored, interactions, values = _edit_inputs(spark)
    cands, long_list = EDIT_CANDIDATES, LONG_LIST
    # r1: t1 (early skip) and t4 (dislike) go; the session's only saved spare t5 takes t1's place, nothing is
    # left for t4. Chosen [t5, t2, t3]: (2 + 1 - 0.25) / 3; rejected (-1 + 1 - 0.25 - 2) / 4 = -0.5625.
    # r3: t7 (removed) and t6 (skip, unknown play time) go; t8 is in the playlist already, so no spare:
    # chosen [t8] = 2.0, rejected (-2 + 2 - 1) / 3. r2 has nothing negative.
    # r4: dropping its one early skip lifts the mean from (9 - 1) / 10 = 0.8 to 1.0: 0.2 < 0.3, no pair.
    # r5: its disliked last track goes: chosen [t1, t2] = 1.0 over the shown (1 + 1 - 2) / 3 = 0.
    a = lambda ids: _answer(ids, cands)  # noqa: E731
    _check(
        edit_pairs(scored, interactions, values, min_margin=0.3, early_skip=0.25),
        [
            _pair(
                _prompt("request s1/0", cands),
                a(["t5", "t2", "t3"]),
                a(["t1", "t2", "t3", "t4"]),
                ("s1/0", "r1:edit", "r1"),
                (round(2.75 / 3, 6), -0.5625),
                "edit",
            ),
            _pair(
                _prompt("request s2/0", cands),
                a(["t8"]),
                a(["t7", "t8", "t6"]),
                ("s2/0", "r3:edit", "r3"),
                (2.0, round(-1 / 3, 6)),
                "edit",
                user_key="u2",
            ),
            _pair(
                _prompt("request s4/0", cands),
                a(["t1", "t2"]),
                a(["t1", "t2", "t3"]),
                ("s4/0", "r5:edit", "r5"),
                (1.0, 0.0),
                "edit",
                user_key="u4",
            ),
        ],
    )
    # The threshold is inclusive of what rounding makes equal: r4's 0.2 pairs at min_margin 0.2.
    r4 = edit_pairs(scored, interactions, values, min_margin=0.2, early_skip=0.25).where("prompt_id = 's3/0'")
    assertDataFrameEqual(
        r4.select("chosen", "reward_chosen", "reward_rejected", "margin"),
        [Row(chosen=_answer(long_list[1:], long_list), reward_chosen=1.0, reward_rejected=0.8, margin=0.2)],
    )


def test_edit_pairs_truncated_rejected(spark) -> None:
    """``truncated``: the rejected side is the shown playlist cut to the chosen's length."""
    scored, interactions, values = _edit_inputs(spark)
    a = lambda ids: _answer(ids, EDIT_CANDIDATES)  # noqa: E731
    # r1: chosen [t5, t2, t3] as before, rejected the first three shown [t1, t2, t3]: (-1 + 1 - 0.25) / 3.
    # r3: chosen [t8], rejected [t7] = -2.0. r4: rejected t1..t9 = (9 - 2) / 9 = 0.777778, 0.222 < 0.3.
    # r5: its edit only dropped the tail, so chosen and rejected are the same two tracks: no pair.
    _check(
        edit_pairs(scored, interactions, values, min_margin=0.3, early_skip=0.25, rejected="truncated"),
        [
            _pair(
                _prompt("request s1/0", EDIT_CANDIDATES),
                a(["t5", "t2", "t3"]),
                a(["t1", "t2", "t3"]),
                ("s1/0", "r1:edit", "r1"),
                (round(2.75 / 3, 6), round(-0.25 / 3, 6)),
                "edit",
            ),
            _pair(
                _prompt("request s2/0", EDIT_CANDIDATES),
                a(["t8"]),
                a(["t7"]),
                ("s2/0", "r3:edit", "r3"),
                (2.0, -2.0),
                "edit",
                user_key="u2",
            ),
        ],
    )


def test_refinement_pairs(spark) -> None:
    before, after = ["t1", "t2", "t3", "t4"], ["t2", "t5", "t6", "t7"]
    scored = spark.createDataFrame(
        [
            _scored_row("r1", "s1", 0, ["t1", "t2"], before, 0.2),  # refined
            _scored_row("r2", "s1", 1, ["t5", "t6"], after, 0.9),
            _scored_row("r3", "s1", 1, ["t7"], after, 0.2),  # not higher than r1: no pair
            _scored_row("r8", "s1", 1, ["t6", "t2"], after, 0.25),  # higher by less than min_margin: pairs
            _scored_row("r6", "s1", 2, ["t7"], after, 1.0),  # two turns later: not paired with r1
            _scored_row("r4", "s2", 0, ["t1"], before, 0.0),  # not refined
            _scored_row("r5", "s2", 1, ["t5"], after, 1.0),
        ],
        SCORED,
    )
    interactions = spark.createDataFrame(
        [("r1", None, "refine", 0, 0), ("r1", None, "refine", 0, 0), ("r4", "t1", "skip", 1, MS)],
        INTERACTIONS,
    )
    # Rejected: r1's playlist named among the new candidates: t1 is not one of them (c0), t2 is c1.
    rejected = [Row(role="assistant", content="c0 | Artist 1 - Song 1\nc1 | Artist 2 - Song 2")]
    assert rejected == _answer(["t1", "t2"], after)
    prompt = _prompt("request s1/1", after)
    _check(
        refinement_pairs(scored, interactions),
        [
            _pair(prompt, _answer(["t5", "t6"], after), rejected, ("s1/1", "r2", "r1"), (0.9, 0.2), "refinement"),
            _pair(prompt, _answer(["t6", "t2"], after), rejected, ("s1/1", "r8", "r1"), (0.25, 0.2), "refinement"),
        ],
    )  # fmt: skip


def test_liked_disliked_pairs(spark) -> None:
    cands = [f"t{i}" for i in range(1, 9)]
    scored = spark.createDataFrame(
        [
            _scored_row("r1", "s1", 0, ["t1", "t2", "t3", "t4", "t5"], cands, 0.0),
            _scored_row("r2", "s1", 1, ["t6", "t7"], cands, 0.0),
        ],
        SCORED,
    )
    interactions = spark.createDataFrame(
        [
            ("r1", "t1", "like", MS, MS),
            ("r1", "t2", "like", MS, MS),
            ("r1", "t2", "complete", MS, MS),
            ("r1", "t3", "dislike", 0, MS),
            ("r1", "t4", "dislike", 0, MS),
            ("r1", "t4", "skip", 1_000, MS),
            ("r1", "t5", "like", MS, MS),  # liked and disliked: in no pair
            ("r1", "t5", "dislike", MS, MS),
            ("r1", "t8", "like", MS, MS),  # not in r1's playlist: in no pair
            ("r2", "t6", "like", MS, MS),  # r2's like never pairs with r1's dislikes
        ],
        INTERACTIONS,
    )
    values = spark.createDataFrame(
        [
            ("r1", "t1", 0, 1.5, 1.5),
            ("r1", "t2", 1, 2.5, 5.0),  # rewards, not position-weighted values, are compared
            ("r1", "t3", 2, -2.0, -4.0),
            ("r1", "t4", 3, -3.0, -6.0),
            ("r1", "t5", 4, -0.5, -1.0),
            ("r2", "t6", 0, 1.5, 1.5),
            ("r2", "t7", 1, 0.0, 0.0),
        ],
        VALUES,
    )
    prompt, p = _prompt("request s1/0", cands), "s1/0"
    reward = {"t1": 1.5, "t2": 2.5, "t3": -2.0, "t4": -3.0}
    _check(
        liked_disliked_pairs(scored, interactions, values),
        [
            _pair(
                prompt,
                _answer([good], cands),
                _answer([bad], cands),
                (p, f"r1:{good}", f"r1:{bad}"),
                (reward[good], reward[bad]),
                "liked_disliked",
            )
            for good in ("t1", "t2")
            for bad in ("t3", "t4")
        ],
    )


def _finalize_input(spark, rows: list[tuple[str, str, str, str, float]]) -> DataFrame:
    """PAIRS rows from (pair_id, prompt_id, user_key, answers "chosen>rejected", margin)."""

    def row(pair_id: str, prompt_id: str, user: str, answers: str, margin: float) -> tuple:
        chosen, rejected = answers.split(">")
        prompt = [Row(role="user", content=prompt_id)]
        msg = lambda text: [Row(role="assistant", content=text)]  # noqa: E731
        return (
            prompt,
            msg(chosen),
            msg(rejected),
            pair_id,
            prompt_id,
            user,
            margin,
            0.0,
            margin,
            "x",
            "train",
        )

    return spark.createDataFrame([row(*r) for r in rows], schemas.PAIRS)


def test_finalize_pairs_dedupes_and_caps(spark) -> None:
    rows = [
        # u1/p1: four pairs, the per-prompt cap keeps the two widest.
        ("a", "p1", "u1", "A>B", 0.9),
        ("b", "p1", "u1", "A>C", 0.7),
        ("c", "p1", "u1", "B>C", 0.5),
        ("d", "p1", "u1", "A>D", 0.3),
        # u1/p0: the same pair logged twice, with different margins: the wider one stays.
        ("e", "p0", "u1", "A>B", 0.5),
        ("f", "p0", "u1", "A>B", 0.8),
        # The same answers under another prompt are not duplicates.
        ("g", "p9", "u1", "A>B", 0.5),
        # u2: one pair on each of four prompts: only the per-user cap can drop them.
        ("h", "p2", "u2", "A>B", 0.6),
        ("i", "p3", "u2", "A>B", 0.4),
        ("j", "p4", "u2", "A>B", 0.2),
        ("k", "p5", "u2", "A>B", 0.1),
    ]
    pairs = _finalize_input(spark, rows)
    got = finalize_pairs(pairs, max_per_prompt=2, max_per_user=4)
    # u1 keeps a, b, f and g (4, at the cap); u2 has 4 pairs, all under the cap of 4.
    assertSchemaEqual(got.schema, schemas.PAIRS)
    assertDataFrameEqual(got, pairs.where("pair_id IN ('a', 'b', 'f', 'g', 'h', 'i', 'j', 'k')"))
    tighter = finalize_pairs(pairs, max_per_prompt=2, max_per_user=3)
    # u1: a 0.9, f 0.8, b 0.7 (g's 0.5 is fourth); u2: h, i, j.
    assertDataFrameEqual(tighter, pairs.where("pair_id IN ('a', 'f', 'b', 'h', 'i', 'j')"))


def test_finalize_pairs_breaks_ties_by_seed_only(spark) -> None:
    # Five pairs tie at 0.5 on one prompt, under a cap of 1: the seed alone decides which one stays.
    rows = [(f"pair-{i}", "p1", "u1", f"A>B{i}", 0.5) for i in range(5)] + [("other", "p2", "u1", "A>B", 0.1)]
    pairs = _finalize_input(spark, rows)
    shuffled = _finalize_input(spark, rows[::-1]).repartition(3)

    def kept(frame: DataFrame, seed: int) -> list[str]:
        out = finalize_pairs(frame, max_per_prompt=1, max_per_user=10, seed=seed)
        return sorted(r.pair_id for r in out.collect())

    picks = {seed: kept(pairs, seed) for seed in range(6)}
    for seed in (0, 1):
        # The same seed gives the same output, whatever the row order and partitioning.
        assertDataFrameEqual(
            finalize_pairs(shuffled, max_per_prompt=1, max_per_user=10, seed=seed),
            pairs.where(f"pair_id IN ('{picks[seed][0]}', '{picks[seed][1]}')"),
        )
    assert all(p[0] == "other" and p[1].startswith("pair-") for p in picks.values())
    assert len({tuple(p) for p in picks.values()}) > 1, "the seed never changed the tie-break"

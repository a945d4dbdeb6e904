"""Rewards: event weights, thumbs, position-weighted track values and the examination propensity estimator."""

from __future__ import annotations

import json
import math
from datetime import datetime
from pathlib import Path

import numpy as np
import pytest
from pyspark.sql import Row
from pyspark.testing import assertDataFrameEqual, assertSchemaEqual

from data_prep import schemas
from data_prep.rewards import position_propensity, response_rewards, track_rewards, track_values
from data_prep.settings import DEFAULT_WEIGHTS
from playlist.simulator import examination_probability, make_catalog, make_users, simulate

pytestmark = pytest.mark.integration

EVENTS = "response_id string, track_id string, event string, ms_played long, track_ms long, ts timestamp"
PLAYLISTS = "response_id string, track_ids array<string>"
T = [datetime(2024, 5, 1, 10, minute) for minute in range(4)]


def test_mssd_skip_labels_and_weight_overrides(spark) -> None:
    events = spark.createDataFrame(
        [
            ("r1", "a", "skip_1", None, None, T[0]),  # MSSD labels need no play time
            ("r1", "b", "skip_2", None, None, T[0]),
            ("r1", "c", "skip_3", None, None, T[0]),
            ("r1", "d", "skip_3", 10, 200, T[0]),  # the label wins over a short play time
            ("r1", "e", "skip_1", None, None, T[0]),
            ("r1", "e", "save", None, None, T[0]),  # -1 + 2
        ],
        EVENTS,
    )
    assertDataFrameEqual(
        track_rewards(events),
        [
            Row(response_id="r1", track_id="a", reward=-1.0),
            Row(response_id="r1", track_id="b", reward=-0.75),
            Row(response_id="r1", track_id="c", reward=-0.25),
            Row(response_id="r1", track_id="d", reward=-0.25),
            Row(response_id="r1", track_id="e", reward=1.0),
        ],
    )
    custom = track_rewards(events, weights={**DEFAULT_WEIGHTS, "skip_2": -0.5, "save": 5.0}, clip=2.0)
    assertDataFrameEqual(
        custom.where("track_id IN ('b', 'e')"),
        [Row(response_id="r1", track_id="b", reward=-0.5), Row(response_id="r1", track_id="e", reward=2.0)],
    )


def test_thumbs_replace_the_implicit_reward_and_the_latest_wins(spark) -> None:
    playlists = spark.createDataFrame(
        [(f"r{i}", ["a", "b"]) for i in range(1, 6)] + [("r6", ["a"])], PLAYLISTS
    )
    events = spark.createDataFrame(
        [
            *[(f"r{i}", "a", "complete", 200, 200, T[0]) for i in range(1, 6)],  # implicit (1 + 0) / 2
            ("r1", None, "thumbs_up", None, None, T[1]),
            ("r1", None, "thumbs_down", None, None, T[2]),  # later: wins
            ("r2", None, "thumbs_down", None, None, T[1]),
            ("r2", None, "thumbs_up", None, None, T[3]),  # later: wins
            ("r2", None, "thumbs_down", None, None, T[2]),
            ("r3", None, "thumbs_down", None, None, T[1]),  # same time: the more positive one
            ("r3", None, "thumbs_up", None, None, T[1]),
            ("r4", None, "refine", None, None, T[1]),  # not a thumb: the implicit reward stays
            ("r6", "a", "save", 200, 200, T[0]),
        ],
        EVENTS,
    )
    values = spark.createDataFrame(
        [("r6", "a", 0, 2.0, 12.0)],  # a large position weight: the mean value is clipped
        "response_id string, track_id string, position int, reward double, value double",
    ).unionByName(track_values(playlists.where("response_id != 'r6'"), events, None))
    rewards = response_rewards(playlists, events, values)
    assertSchemaEqual(rewards.schema, schemas.RESPONSE_REWARDS)
    assertDataFrameEqual(
        rewards,
        [
            Row(response_id="r1", reward=-3.0),
            Row(response_id="r2", reward=3.0),
            Row(response_id="r3", reward=3.0),
            Row(response_id="r4", reward=0.5),
            Row(response_id="r5", reward=0.5),
            Row(response_id="r6", reward=3.0),  # 12 clipped to 3
        ],
    )
    custom = response_rewards(
        playlists,
        events,
        values,
        weights={**DEFAULT_WEIGHTS, "thumbs_up": 1.0, "thumbs_down": -0.5},
        clip=0.4,
    )
    assertDataFrameEqual(
        custom.where("response_id IN ('r1', 'r2', 'r5')"),
        [
            Row(response_id="r1", reward=-0.5),
            Row(response_id="r2", reward=1.0),
            Row(response_id="r5", reward=0.4),
        ],
    )


def test_track_values_with_and_without_propensity(spark) -> None:
    playlists = spark.createDataFrame([("r1", ["a", "b", "c", "a", "d"])], PLAYLISTS)
    events = spark.createDataFrame(
        [
            ("r1", "a", "complete", 200, 200, T[0]),
            ("r1", "c", "save", 200, 200, T[0]),
            ("r1", "d", "skip", 10, 200, T[0]),
            ("r1", "x", "save", 200, 200, T[0]),  # not shown: no value
            ("r1", None, "thumbs_up", None, None, T[0]),
        ],
        EVENTS,
    )
    propensity = spark.createDataFrame(
        [(0, 10, 10, 1.0), (1, 10, 5, 0.5), (2, 10, 2, 0.25)], schemas.PROPENSITY
    )  # no estimate for position 4: weight 1
    with_ipw = track_values(playlists, events, propensity)
    assertSchemaEqual(with_ipw.schema, schemas.TRACK_VALUES)
    # "a" repeats at position 3 but counts once, at its first position.
    assertDataFrameEqual(
        with_ipw,
        [
            Row(response_id="r1", track_id="a", position=0, reward=1.0, value=1.0),
            Row(response_id="r1", track_id="b", position=1, reward=0.0, value=0.0),
            Row(response_id="r1", track_id="c", position=2, reward=2.0, value=8.0),
            Row(response_id="r1", track_id="d", position=4, reward=-1.0, value=-1.0),
        ],
    )
    assertDataFrameEqual(
        track_values(playlists, events, None),
        [
            Row(response_id="r1", track_id="a", position=0, reward=1.0, value=1.0),
            Row(response_id="r1", track_id="b", position=1, reward=0.0, value=0.0),
            Row(response_id="r1", track_id="c", position=2, reward=2.0, value=2.0),
            Row(response_id="r1", track_id="d", position=4, reward=-1.0, value=-1.0),
        ],
    )


def test_position_propensity_on_inline_logs(spark) -> None:
    # 12 playlists: 10 of 3 tracks, 2 of 5. Examined (any track-level event) at position 0: 8 of 12, at 1: 4,
    # at 2: 6, at 3: 1 of 2, at 4: 0 of 2.
    lengths = [3] * 10 + [5] * 2
    playlists = [(f"r{i}", [f"t{p}" for p in range(n)]) for i, n in enumerate(lengths)]
    examined = {0: range(8), 1: range(4), 2: range(6), 3: [10], 4: []}
    events = [(f"r{i}", f"t{p}", "play", 1, 200, T[0]) for p, rows in examined.items() for i in rows]
    events += [
        ("r0", "t0", "complete", 200, 200, T[1]),  # a second event on an examined track counts once
        ("r11", None, "thumbs_up", None, None, T[1]),  # response-level: no track examined
        ("r11", "t9", "play", 1, 200, T[1]),  # not in r11's playlist: no position
    ]
    responses = spark.createDataFrame(playlists, PLAYLISTS)
    interactions = spark.createDataFrame(events, EVENTS)
    got = position_propensity(responses, interactions, max_ipw=10.0, min_support=5)
    assertSchemaEqual(got.schema, schemas.PROPENSITY)
    # Relative to position 0 (8/12): 1; (4/12) / (8/12) = 0.5; (6/12) / (8/12) = 0.75, held at the running
    # minimum 0.5; positions 3 and 4 were shown twice (< min_support 5): the last supported estimate, 0.5.
    assertDataFrameEqual(
        got,
        [
            Row(position=0, shown=12, examined=8, propensity=1.0),
            Row(position=1, shown=12, examined=4, propensity=0.5),
            Row(position=2, shown=12, examined=6, propensity=0.5),
            Row(position=3, shown=2, examined=1, propensity=0.5),
            Row(position=4, shown=2, examined=0, propensity=0.5),
        ],
    )
    # max_ipw 1.6: no position is weighted more than 1.6, so 0.5 is floored at 1 / 1.6 = 0.625.
    floored = position_propensity(responses, interactions, max_ipw=1.6, min_support=5)
    assertDataFrameEqual(floored.select("propensity"), [Row(propensity=p) for p in (1.0, *[0.625] * 4)])
    # min_support 13: no position has support, so none is corrected.
    unsupported = position_propensity(responses, interactions, max_ipw=10.0, min_support=13)
    assertDataFrameEqual(unsupported.select("propensity"), [Row(propensity=1.0)] * 5)
    # Thumbs-only logs examine nothing anywhere: no estimate (propensity 1), and no division by zero.
    thumbs = interactions.where("event = 'thumbs_up'")
    assertDataFrameEqual(
        position_propensity(responses, thumbs, min_support=5).select("examined", "propensity"),
        [Row(examined=0, propensity=1.0)] * 5,
    )


def test_propensity_estimates_the_simulators_examination_curve(spark, tmp_path: Path) -> None:
    seed, n_users = 0, 40
    paths = simulate(tmp_path, seed=seed, n_users=n_users)
    responses = [json.loads(line) for line in paths["responses"].read_text().splitlines()]
    interactions = [json.loads(line) for line in paths["interactions"].read_text().splitlines()]
    # The simulator's users, drawn as simulate() draws them (src/playlist/simulator/writer.py).
    users = make_users(make_catalog(seed), n_users, np.random.default_rng([seed, 1]))
    patience = {u.user_id: u.patience for u in users}

    got = position_propensity(
        spark.createDataFrame([(r["response_id"], r["track_ids"]) for r in responses], PLAYLISTS),
        spark.createDataFrame(
            [(e["response_id"], e["track_id"], e["event"]) for e in interactions],
            "response_id string, track_id string, event string",
        ),
    )  # the job's defaults: max_ipw 10, min_support 20
    estimate = {r.position: r for r in got.collect()}

    # Truth: the examination probability of each shown track, e(p, patience of its user), averaged over the
    # tracks shown at p (so users weigh as much as they were shown there), relative to position 0, where
    # e(0, ·) = 0.97 for everyone. Given who was shown what, the examined count at p is a sum of independent
    # Bernoulli draws (one rng draw per track in simulate_feedback), so its variance is sum e(1 - e).
    mean, var, shown = {}, {}, {}
    for p in range(max(len(r["track_ids"]) for r in responses)):
        probs = [
            examination_probability(p, patience[r["user_id"]]) for r in responses if len(r["track_ids"]) > p
        ]
        shown[p] = len(probs)
        mean[p] = sum(probs) / len(probs)
        var[p] = sum(e * (1 - e) for e in probs) / len(probs) ** 2
    base = examination_probability(0, 0.5)
    assert all(examination_probability(0, x) == base for x in patience.values())
    # Standard error of the ratio (examined share at p) / (examined share at 0), by the delta method.
    se = {p: math.sqrt(var[p] / mean[0] ** 2 + mean[p] ** 2 * var[0] / mean[0] ** 4) for p in mean}
    truth, running, worst = {}, 1.0, 0.0
    for p in sorted(mean):
        # The estimator's running minimum and floor applied to the truth; the running minimum moves an
        # estimate by at most the largest error before it, so position p is allowed 4 × the largest SE up to p.
        running = min(running, mean[p] / mean[0])
        truth[p] = max(running, 0.1)
        worst = max(worst, se[p])
        if shown[p] >= 100:  # enough support: a few hundred tracks, SE ≈ 0.01–0.03
            assert estimate[p].shown == shown[p]
            assert abs(estimate[p].propensity - truth[p]) <= 4 * worst, (p, estimate[p], truth[p], worst)
    # The curve falls well below 1 within the checked positions, so the check is not trivially met.
    checked = [p for p in mean if shown[p] >= 100]
    assert len(checked) >= 8 and truth[max(checked)] < 0.6

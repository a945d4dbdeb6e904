"""Spark's prompt and answer rendering writes exactly what playlist.prompts writes, character for character."""

from __future__ import annotations

import random
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pyspark.sql import functions as F

from data_prep.render import (
    SHOWN_TRACK,
    describe,
    render_answer,
    render_prompt,
    render_responses,
    reshuffled_copies,
    shuffle_train_candidates,
    with_attrs,
)
from data_prep.schemas import TRACK
from playlist.prompts import Track, render_playlist
from playlist.prompts import describe as python_describe
from playlist.prompts import render_prompt as python_prompt

pytestmark = pytest.mark.integration

TEXT = st.text(st.characters(blacklist_categories=("Cs",)), max_size=12)
# Energies and valences on and beside the rounding edges of `:.2f` (0.125, 0.005, 0.355 …), and nulls: the
# validated catalog's range, [0, 1] (-0.0 passes `energy < 0`).
ENERGY = st.one_of(
    st.none(),
    st.sampled_from([0.005, 0.015, 0.125, 0.355, 0.445, 0.755, 0.995, 0.0, -0.0, 1.0, 0.004999999999999999]),
    st.floats(0, 1),
)
TRACKS = st.lists(
    st.builds(
        Track,
        track_id=st.sampled_from([f"t{i}" for i in range(8)]),  # repeated ids on purpose
        artist=TEXT,
        title=TEXT,
        genre=st.one_of(st.just(""), TEXT),
        year=st.one_of(st.none(), st.just(0), st.integers(1900, 2030)),
        energy=ENERGY,
        valence=ENERGY,
    ),
    max_size=6,
)
EXAMPLES = st.lists(
    st.tuples(TEXT, st.lists(st.one_of(st.none(), TEXT), max_size=3), TRACKS, TRACKS), min_size=1, max_size=40
)
TRACK_TYPE = "struct<" + ",".join(f"{f.name}:{f.dataType.simpleString()}" for f in TRACK.fields) + ">"


def _row(track: Track) -> dict[str, Any]:
    return {name: getattr(track, name) for name in TRACK.fieldNames()}


def test_attribute_text_equals_describe_on_a_sweep_of_energies(spark) -> None:
    rng = random.Random(0)
    energies = [k / 10000 for k in range(10001)] + [rng.random() for _ in range(3000)] + [-0.0, None]
    valences = [*energies[1:], None]
    rows = [
        (e, v, ["", "folk", None][i % 3], [None, 0, 1972][i % 3])
        for i, (e, v) in enumerate(zip(energies, valences, strict=True))
    ]
    df = spark.createDataFrame(rows, "energy double, valence double, genre string, year int")
    attrs = describe(F.col("genre"), F.col("year"), F.col("energy"), F.col("valence"))
    for energy, valence, genre, year, text in df.select(
        "energy", "valence", "genre", "year", attrs
    ).collect():
        expected = python_describe(Track("", "", "", genre or "", year, energy, valence))
        assert text == expected, (energy, valence, genre, year)


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(examples=EXAMPLES)
def test_spark_rendering_equals_encore_prompts(spark, examples: list[tuple]) -> None:
    rows = [(i, request, history, [_row(t) for t in cands], [_row(t) for t in playlist])
            for i, (request, history, cands, playlist) in enumerate(examples)]  # fmt: skip
    schema = f"i int, request string, history array<string>, cands array<{TRACK_TYPE}>, playlist array<{TRACK_TYPE}>"
    df = spark.createDataFrame(rows, schema)
    # Candidates get their attribute text as attach_tracks gives it, then are put back in order.
    exploded = with_attrs(df.select("i", F.posexplode("cands").alias("pos", "t")).select("i", "pos", "t.*"))
    shown = F.struct(*[F.col(name) for name in SHOWN_TRACK.fieldNames()])
    regrouped = exploded.groupBy("i").agg(
        F.sort_array(F.collect_list(F.struct("pos", shown.alias("t")))).alias("x")
    )
    empty = F.array().cast(f"array<{SHOWN_TRACK.simpleString()}>")
    df = df.join(regrouped, "i", "left").withColumn(
        "shown", F.coalesce(F.transform("x", lambda s: s["t"]), empty)
    )
    out = df.select(
        "i",
        render_prompt(F.col("request"), F.col("history"), F.col("shown")).alias("prompt"),
        render_answer(F.col("playlist"), F.col("shown")).alias("answer"),
    ).collect()
    got = {r["i"]: ([m.asDict() for m in r["prompt"]], r["answer"][0]["content"]) for r in out}
    for i, (request, history, cands, playlist) in enumerate(examples):
        assert got[i] == (python_prompt(request, history, cands), render_playlist(playlist, cands)), i


def test_training_prompts_show_their_candidates_in_a_seeded_order_and_eval_prompts_as_logged(spark) -> None:
    ids = [f"t{i}" for i in range(12)]
    tracks = [_row(Track(t, "a", "b", "folk", 1990, 0.5, 0.5)) for t in ids]
    rows = [("r1", "p1", "train", tracks), ("r2", "p1", "train", tracks), ("r3", "p2", "train", tracks),
            ("r4", "p1", "eval", tracks)]  # fmt: skip
    df = spark.createDataFrame(
        rows, f"response_id string, prompt_id string, split string, candidates_tracks array<{TRACK_TYPE}>"
    )

    def orders(seed: int) -> dict[str, list[str]]:
        out = shuffle_train_candidates(df, seed).select("response_id", "candidates_tracks.track_id").collect()
        return {r["response_id"]: r["track_id"] for r in out}

    got = orders(0)
    assert got["r4"] == ids  # eval rows: the logged (retrieval) order a served model sees
    assert got["r1"] == got["r2"] != ids  # one prompt, one order: both sides of a pair share it
    assert sorted(got["r1"]) == sorted(ids) and got["r3"] != got["r1"]  # a permutation, per prompt
    assert orders(0) == got and orders(1)["r1"] != got["r1"]  # seeded


def test_reshuffled_copies_repeat_training_rows_under_other_ids_and_keep_the_answer(spark) -> None:
    tracks = [_row(Track(f"t{i}", f"a{i}", f"b{i}", "folk", 1990, 0.5, 0.5)) for i in range(6)]
    chosen = [tracks[4], tracks[1]]
    rows = [("p1", "train", "r", [], tracks, chosen), ("p2", "eval", "r", [], tracks, chosen)]
    schema = (
        "prompt_id string, split string, request string, history array<string>, "
        f"candidates_tracks array<{TRACK_TYPE}>, track_ids_tracks array<{TRACK_TYPE}>"
    )
    with_text = F.transform(F.col("candidates_tracks"), lambda t: t.withField("attrs", F.lit("folk")))
    base = spark.createDataFrame(rows, schema).withColumn("candidates_tracks", with_text)
    out = reshuffled_copies(render_responses(base), 3, seed=0).collect()
    assert sorted(r["prompt_id"] for r in out) == ["p1", "p1", "p1", "p2"]
    train = [r for r in out if r["prompt_id"] == "p1"]
    orders = {tuple(t["track_id"] for t in r["candidates_tracks"]) for r in train}
    assert len(orders) == 3  # three orders of one prompt's candidates
    for r in train:  # every copy's answer names the same tracks, by the ids of its own order
        ids = [t["track_id"] for t in r["candidates_tracks"]]
        cands = [Track(t["track_id"], t["artist"], t["title"]) for t in r["candidates_tracks"]]
        assert r["completion"][0]["content"] == render_playlist(
            [cands[ids.index("t4")], cands[ids.index("t1")]], cands
        )
    assert reshuffled_copies(base, 1, seed=0) is base

"""The benchmark log generator (bench/synth_logs.py): canonical schemas, exact size, determinism by seed."""

from __future__ import annotations

import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from pyspark.sql import types as T  # the type classes only: no Spark session is started

from data_prep import schemas

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
import synth_logs

ARROW = {
    T.StringType(): pa.string(),
    T.IntegerType(): pa.int32(),
    T.LongType(): pa.int64(),
    T.DoubleType(): pa.float64(),
    T.TimestampType(): pa.timestamp("us", tz="UTC"),
    T.ArrayType(T.StringType()): pa.list_(pa.string()),
}
CANONICAL = {"responses": schemas.RESPONSES, "interactions": schemas.INTERACTIONS, "catalog": schemas.CATALOG}


def _read(paths: dict[str, Path]) -> dict[str, pa.Table]:
    return {name: pq.read_table(path) for name, path in paths.items()}


@pytest.fixture(scope="module")
def logs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, pa.Table]:
    return _read(synth_logs.cached_logs(3_000, seed=7, root=tmp_path_factory.mktemp("synth")))


def test_written_logs_have_the_canonical_spark_schemas(logs: dict[str, pa.Table]) -> None:
    for name, struct in CANONICAL.items():
        expected = [(f.name, ARROW[f.dataType]) for f in struct.fields]
        assert [(f.name, f.type) for f in logs[name].schema] == expected, name


def test_size_is_exact_and_every_event_kind_and_bad_row_occurs(logs: dict[str, pa.Table]) -> None:
    inter = logs["interactions"].to_pandas()
    assert len(inter) == 3_000
    assert set(inter["event"]) == set(synth_logs.EVENTS)
    catalog = set(logs["catalog"].column("track_id").to_pylist())
    assert (inter["ms_played"] < 0).any()
    assert (inter["track_id"].notna() & ~inter["track_id"].isin(catalog)).any()
    assert inter.duplicated().any()
    by_position = inter["position"].value_counts()
    assert by_position[0] > by_position[5] > by_position[10]  # position-biased examination
    known = set(logs["responses"].column("response_id").to_pylist())
    assert inter["response_id"].isin(known).all()


def test_variants_share_the_request_and_refinements_open_the_next_turn(logs: dict[str, pa.Table]) -> None:
    resp = logs["responses"].to_pandas()
    resp["cands"] = resp["candidates"].map(tuple)
    per_prompt = resp.groupby(["session_id", "turn"]).agg(
        n=("response_id", "size"), requests=("request", "nunique"), cands=("cands", "nunique")
    )
    assert (per_prompt["n"] == 2).mean() > 0.95  # only the last prompt may lose a variant to the cut
    assert (per_prompt[["requests", "cands"]] == 1).all().all()
    inter = logs["interactions"].to_pandas()
    refine = inter[inter["event"] == "refine"].merge(resp, on="response_id")
    following = resp.assign(turn=resp["turn"] - 1)[["session_id", "turn", "request"]].drop_duplicates()
    matched = refine.merge(following, on=["session_id", "turn"], suffixes=("", "_next"))
    assert len(matched) > 0 and (matched["text"] == matched["request_next"]).all()


def test_the_same_seed_gives_the_same_logs_and_another_seed_does_not(tmp_path: Path) -> None:
    a = _read(synth_logs.cached_logs(1_500, seed=1, root=tmp_path / "a"))
    b = _read(synth_logs.cached_logs(1_500, seed=1, root=tmp_path / "b"))
    c = _read(synth_logs.cached_logs(1_500, seed=2, root=tmp_path / "c"))
    assert all(a[name].equals(b[name]) for name in synth_logs.NAMES)
    assert not a["interactions"].equals(c["interactions"])


def test_parse_size() -> None:
    assert [synth_logs.parse_size(s) for s in ("100k", "1M", "16M", "2500", "1.5k")] == [
        100_000,
        1_000_000,
        16_000_000,
        2_500,
        1_500,
    ]

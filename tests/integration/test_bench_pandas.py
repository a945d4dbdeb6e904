"""The pandas baseline of bench/prep_scaling.py computes what the Spark job computes, on generated logs.

Without this the benchmark's pandas-vs-Spark comparison could time two different computations.
"""

from __future__ import annotations

import hashlib
import hmac
import sys
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from pyspark.sql import SparkSession

from data_prep.job import run
from data_prep.rewards import position_propensity, response_rewards, track_values
from data_prep.settings import PairSettings, PrepSettings

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
import pandas_prep
import synth_logs

# A check of the benchmark, not of the product: in the slow tier with the benchmarks (~1.5 min; CI is
# near its 30-minute budget). Passed 2026-11-26: `pytest -m slow tests/integration/test_bench_pandas.py`.
pytestmark = pytest.mark.slow

KEY = "bench-test"
ONE_STEP = 1e-6 + 1e-12  # one step of the 6-digit rounding, plus float noise in the difference
SETTINGS = PrepSettings(pairs=PairSettings(strategies=["response"]))  # the strategy pandas_prep mirrors


def _keyed(text: str, chars: int = 16) -> str:
    return hmac.new(KEY.encode(), text.encode(), hashlib.sha256).hexdigest()[:chars]


@pytest.fixture(scope="module")
def both(spark: SparkSession, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("bench")
    paths = {name: str(p) for name, p in synth_logs.cached_logs(6_000, seed=3, root=root).items()}
    out = root / "out"
    manifest = run(
        spark,
        responses=paths["responses"],
        interactions=paths["interactions"],
        catalog=paths["catalog"],
        intents=None,
        out=str(out),
        hash_key=KEY,
        settings=SETTINGS,
    )
    return {"manifest": manifest, "out": out, "pandas": pandas_prep.prepare(**paths, settings=SETTINGS)}


def test_same_valid_rows_as_the_job(both: dict[str, Any]) -> None:
    inputs = both["manifest"]["inputs"]
    assert inputs["responses"]["rows_out"] == len(both["pandas"].responses)
    assert inputs["interactions"]["rows_out"] == len(both["pandas"].interactions)
    assert inputs["interactions"]["rows_quarantined"] > 0  # the generated bad rows were exercised


def test_same_propensities_and_response_rewards(spark: SparkSession, both: dict[str, Any]) -> None:
    expected = pd.DataFrame(both["manifest"]["position_propensity"]).sort_values("position")
    got = both["pandas"].propensity
    assert got["position"].tolist() == expected["position"].tolist()
    assert got["shown"].tolist() == expected["shown"].tolist()
    assert got["examined"].tolist() == expected["examined"].tolist()
    assert (got["propensity"] - expected["propensity"].to_numpy()).abs().max() <= 1e-9
    assert got["propensity"].iloc[-1] < 0.9  # the correction is not a no-op on these logs

    responses = spark.read.parquet(str(both["out"] / "validated/responses"))
    interactions = spark.read.parquet(str(both["out"] / "validated/interactions"))
    rw = SETTINGS.rewards
    weights = rw.resolved_weights()
    propensity = position_propensity(
        responses, interactions, max_ipw=rw.max_ipw, min_support=rw.min_position_support
    )
    values = track_values(
        responses, interactions, propensity, weights=weights, early_skip=rw.early_skip, clip=rw.track_clip
    )
    spark_rewards = response_rewards(responses, interactions, values, weights=weights, clip=rw.track_clip)
    spark_side = pd.Series({r.response_id: r.reward for r in spark_rewards.collect()})
    pandas_side = both["pandas"].responses.set_index("response_id")["reward"]
    assert sorted(spark_side.index) == sorted(pandas_side.index)
    diff = (spark_side - pandas_side.reindex(spark_side.index)).abs()
    # Both round to 6 digits; an exact tie at the 7th can round either way with the order of the sum
    # (Spark's order depends on partitioning), so one rounding step is the most they may differ by.
    assert diff.max() <= ONE_STEP
    assert (diff > 0).mean() < 0.02
    assert spark_side.nunique() > 100


def test_same_response_pairs(both: dict[str, Any]) -> None:
    pairs = pd.read_parquet(both["out"] / "pairs")
    columns = ["reward_chosen", "reward_rejected", "margin"]
    spark_side = pairs.set_index("pair_id")[columns]
    responses = both["pandas"].responses.set_index("response_id")
    ids = []
    for p in both["pandas"].pairs.itertuples():
        r = responses.loc[p.chosen_id]
        prompt_id = _keyed(f"{r.session_id}\u001f{r.turn}\u001f{r.request}")
        ids.append(
            hashlib.sha256(f"{prompt_id}\u001f{p.chosen_id}\u001f{p.rejected_id}".encode()).hexdigest()[:16]
        )
    pandas_side = both["pandas"].pairs.set_index(pd.Index(ids, name="pair_id"))[columns]
    assert len(spark_side) > 50
    assert sorted(pandas_side.index) == sorted(spark_side.index)
    assert (pandas_side.reindex(spark_side.index) - spark_side).abs().to_numpy().max() <= ONE_STEP
    assert both["manifest"]["strategy_counts"] == {"response": len(spark_side)}

"""Preference pairs: responses to the same request, the better-rewarded one chosen over the other.

Two responses form a pair when they share ``prompt_id`` (session, turn, request), user and candidate
list (so one prompt serves both answers), their rewards differ by at least ``min_margin`` and their
playlists differ. Ties never pair. Each prompt keeps its ``max_pairs_per_prompt`` widest-margin pairs.
"""

from __future__ import annotations

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from data_prep.schemas import PAIRS
from data_prep.splits import pair_id

STRATEGY = "reward_margin"


def build_pairs(
    scored: DataFrame, *, min_margin: float, max_pairs_per_prompt: int, seed: int = 0
) -> DataFrame:
    """Build chosen/rejected pairs from scored, rendered responses.

    Args:
        scored: One row per response with ``response_id, prompt_id, user_key, split, candidates,
            reward, prompt, completion``.
        min_margin: Smallest reward difference that makes a pair.
        max_pairs_per_prompt: Most pairs kept per prompt (widest margins first).
        seed: Breaks ties between equal margins, reproducibly.

    Returns:
        Rows of :data:`data_prep.schemas.PAIRS`.
    """
    a, b = scored.alias("a"), scored.alias("b")
    margin = F.round(F.col("a.reward") - F.col("b.reward"), 6)
    joined = a.join(
        b,
        (F.col("a.prompt_id") == F.col("b.prompt_id"))
        & (F.col("a.user_key") == F.col("b.user_key"))
        & (F.col("a.candidates") == F.col("b.candidates"))
        & (F.col("a.reward") > F.col("b.reward"))
        & (margin >= F.lit(min_margin))
        & (F.col("a.completion") != F.col("b.completion")),
    )
    pairs = joined.select(
        F.col("a.prompt").alias("prompt"),
        F.col("a.completion").alias("chosen"),
        F.col("b.completion").alias("rejected"),
        pair_id(F.col("a.prompt_id"), F.col("a.response_id"), F.col("b.response_id")).alias("pair_id"),
        F.col("a.prompt_id").alias("prompt_id"),
        F.col("a.user_key").alias("user_key"),
        F.col("a.reward").alias("reward_chosen"),
        F.col("b.reward").alias("reward_rejected"),
        margin.alias("margin"),
        F.lit(STRATEGY).alias("strategy"),
        F.col("a.split").alias("split"),
    )
    rank = Window.partitionBy("prompt_id").orderBy(
        F.col("margin").desc(), F.xxhash64("pair_id", F.lit(seed)), F.col("pair_id")
    )
    kept = pairs.withColumn("_rank", F.row_number().over(rank)).where(F.col("_rank") <= max_pairs_per_prompt)
    return kept.select(*PAIRS.fieldNames())

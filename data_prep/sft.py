"""SFT examples: the best logged response of each prompt when its reward is worth imitating, and curated playlists.

A curated response (``policy`` starting with ``curated``, e.g. an MPD playlist under its title) was
made by a person for that request: it is an example whatever its logged feedback.
"""

from __future__ import annotations

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from data_prep.schemas import SFT

CURATED_PREFIX = "curated"


def is_curated(policy: str = "policy") -> F.Column:
    """True for responses written by people rather than a model."""
    return F.coalesce(F.col(policy).startswith(CURATED_PREFIX), F.lit(False))


def best_per_prompt(scored: DataFrame) -> DataFrame:
    """The highest-reward response of each ``prompt_id`` (ties: smallest ``response_id``)."""
    window = Window.partitionBy("prompt_id").orderBy(F.col("reward").desc(), F.col("response_id"))
    return scored.withColumn("_rank", F.row_number().over(window)).where(F.col("_rank") == 1).drop("_rank")


def build_sft(best: DataFrame, *, sft_min_reward: float) -> DataFrame:
    """SFT rows: ``messages`` = prompt + answer, for good best answers and for every curated one.

    Args:
        best: Output of :func:`best_per_prompt` (``prompt, completion, prompt_id, user_key, reward,
            policy, split``).
        sft_min_reward: Smallest reward worth imitating (curated answers need none).

    Returns:
        Rows of :data:`data_prep.schemas.SFT`.
    """
    curated = is_curated()
    good = best.where(curated | (F.col("reward") >= F.lit(sft_min_reward)))
    origin = F.when(curated, F.lit("curated")).otherwise(F.lit("feedback"))
    return (
        good.withColumn("messages", F.concat("prompt", "completion"))
        .withColumn("origin", origin)
        .select(*SFT.fieldNames())
    )

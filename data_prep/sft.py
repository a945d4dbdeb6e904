"""SFT examples: the best logged response of each prompt, when its reward is high enough to imitate."""

from __future__ import annotations

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from data_prep.schemas import SFT


def best_per_prompt(scored: DataFrame) -> DataFrame:
    """The highest-reward response of each ``prompt_id`` (ties: smallest ``response_id``)."""
    window = Window.partitionBy("prompt_id").orderBy(F.col("reward").desc(), F.col("response_id"))
    return scored.withColumn("_rank", F.row_number().over(window)).where(F.col("_rank") == 1).drop("_rank")


def build_sft(best: DataFrame, *, sft_min_reward: float) -> DataFrame:
    """SFT rows: ``messages`` = prompt + the best answer, for prompts whose best reward reaches the bar.

    Args:
        best: Output of :func:`best_per_prompt` (``prompt, completion, prompt_id, user_key, reward, split``).
        sft_min_reward: Smallest reward worth imitating.

    Returns:
        Rows of :data:`data_prep.schemas.SFT`.
    """
    good = best.where(F.col("reward") >= F.lit(sft_min_reward))
    return good.withColumn("messages", F.concat("prompt", "completion")).select(*SFT.fieldNames())

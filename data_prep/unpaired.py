"""Unpaired rows for KTO: single responses labelled desirable or undesirable by their reward.

Thumbs and implicit feedback usually judge one playlist at a time; KTO learns from exactly that,
without needing a second playlist for the same request. Responses between the two thresholds say
too little either way and are left out; curated responses are always desirable.
"""

from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from data_prep.schemas import UNPAIRED
from data_prep.sft import is_curated


def build_unpaired(scored: DataFrame, *, min_reward: float, max_reward: float) -> DataFrame:
    """KTO rows (``prompt, completion, label`` + metadata) from scored, rendered responses.

    Args:
        scored: One row per response (``prompt, completion, prompt_id, user_key, reward, policy, split``).
        min_reward: Reward from which a response is desirable (label true).
        max_reward: Reward up to which a response is undesirable (label false).

    Returns:
        Rows of :data:`data_prep.schemas.UNPAIRED`.
    """
    if max_reward >= min_reward:
        raise ValueError(f"unpaired thresholds overlap: max_reward {max_reward} >= min_reward {min_reward}")
    desirable = is_curated() | (F.col("reward") >= F.lit(min_reward))
    undesirable = ~is_curated() & (F.col("reward") <= F.lit(max_reward))
    labelled = scored.where(desirable | undesirable).withColumn("label", desirable)
    return labelled.select(*UNPAIRED.fieldNames())

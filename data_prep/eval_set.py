"""Eval prompts: one row per prompt of the held-out users, with the intent and best logged playlist."""

from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from data_prep.schemas import EVAL


def build_eval(best: DataFrame, scored: DataFrame, intents: DataFrame | None) -> DataFrame:
    """Eval rows for prompts of eval-split users.

    Args:
        best: Output of :func:`data_prep.sft.best_per_prompt`.
        scored: Every scored response (``response_id, prompt_id``), to find an intent logged on any
            variant of the prompt when the best one has none.
        intents: Valid intents (``response_id, intent``), or None.

    Returns:
        Rows of :data:`data_prep.schemas.EVAL`; ``reference`` is the best response's ``track_ids``.
    """
    rows = best.where(F.col("split") == "eval")
    if intents is None:
        rows = rows.withColumn("intent", F.lit(None).cast("string"))
    else:
        own = intents.select("response_id", F.col("intent").alias("_own"))
        # Variants of one request share the intent behind it; min() just makes the pick deterministic.
        shared = (
            scored.select("response_id", "prompt_id")
            .join(intents, "response_id")
            .groupBy("prompt_id")
            .agg(F.min("intent").alias("_shared"))
        )
        rows = rows.join(own, "response_id", "left").join(shared, "prompt_id", "left")
        rows = rows.withColumn("intent", F.coalesce("_own", "_shared"))
    return rows.withColumn("reference", F.col("track_ids")).select(*EVAL.fieldNames())

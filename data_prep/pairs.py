"""Preference pairs from all selected strategies: union, exact duplicates removed, capped per prompt and user.

The strategies themselves live in :mod:`data_prep.strategies`. Two pairs are exact duplicates when
their prompt, chosen and rejected messages are equal (e.g. the same A/B pair logged twice); the one
with the wider margin stays. Each prompt then keeps its ``max_per_prompt`` widest-margin pairs, and
each user its ``max_per_user``, so no prompt or heavy user dominates the data. Ties in margin are
broken by a seeded hash of ``pair_id``: the output is the same for the same input and seed.
"""

from __future__ import annotations

from collections.abc import Sequence

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from data_prep.schemas import PAIRS
from data_prep.settings import EditRejected
from data_prep.strategies import edit_pairs, liked_disliked_pairs, refinement_pairs, response_pairs


def finalize_pairs(pairs: DataFrame, *, max_per_prompt: int, max_per_user: int, seed: int = 0) -> DataFrame:
    """Drop exact duplicates, then cap pairs per prompt and per user (widest margins first).

    Args:
        pairs: Rows of :data:`data_prep.schemas.PAIRS` from any strategies.
        max_per_prompt: Most pairs kept per ``prompt_id``.
        max_per_user: Most pairs kept per ``user_key``.
        seed: Breaks ties between equal margins, reproducibly.

    Returns:
        Rows of :data:`data_prep.schemas.PAIRS`.
    """
    # Equal content, equal 96-bit hash; hashing the message structs avoids serialising them to text.
    content = [
        F.xxhash64("prompt", "chosen", "rejected").alias("_c64"),
        F.hash("prompt", "chosen", "rejected").alias("_c32"),
    ]
    order = [F.col("margin").desc(), F.xxhash64("pair_id", F.lit(seed)), F.col("pair_id")]
    rank = F.row_number()
    unique = (
        pairs.select("*", *content)
        .withColumn("_rank", rank.over(Window.partitionBy("_c64", "_c32").orderBy(*order)))
        .where(F.col("_rank") == 1)
    )
    per_prompt = unique.withColumn("_rank", rank.over(Window.partitionBy("prompt_id").orderBy(*order)))
    per_prompt = per_prompt.where(F.col("_rank") <= max_per_prompt)
    per_user = per_prompt.withColumn("_rank", rank.over(Window.partitionBy("user_key").orderBy(*order)))
    return per_user.where(F.col("_rank") <= max_per_user).select(*PAIRS.fieldNames())


def build_pairs(
    scored: DataFrame,
    interactions: DataFrame,
    values: DataFrame,
    *,
    strategies: Sequence[str],
    min_margin: float,
    early_skip: float,
    max_per_prompt: int,
    max_per_user: int,
    edit_rejected: EditRejected = "shown",
    seed: int = 0,
) -> DataFrame:
    """Pairs from the selected strategies, finalized (see :func:`finalize_pairs`).

    Args:
        scored: Scored, rendered responses (see :mod:`data_prep.strategies`).
        interactions: Valid interactions.
        values: Track values (:func:`data_prep.rewards.track_values`).
        strategies: Names among ``response, edit, refinement, liked_disliked``.
        min_margin: Smallest reward gap for ``response`` and ``edit`` pairs.
        early_skip: Fraction of the track below which a plain skip is early.
        edit_rejected: The ``edit`` pairs' rejected side (:func:`data_prep.strategies.edit_pairs`).
        max_per_prompt: See :func:`finalize_pairs`.
        max_per_user: See :func:`finalize_pairs`.
        seed: See :func:`finalize_pairs`.

    Returns:
        Rows of :data:`data_prep.schemas.PAIRS`.
    """
    built = {
        "response": lambda: response_pairs(scored, min_margin=min_margin),
        "edit": lambda: edit_pairs(
            scored, interactions, values, min_margin=min_margin, early_skip=early_skip, rejected=edit_rejected
        ),
        "refinement": lambda: refinement_pairs(scored, interactions),
        "liked_disliked": lambda: liked_disliked_pairs(scored, interactions, values),
    }
    unknown = sorted(set(strategies) - set(built))
    if unknown:
        raise ValueError(f"unknown pair strategies {unknown}; known: {sorted(built)}")
    frames = [built[name]() for name in strategies]
    if not frames:
        return scored.sparkSession.createDataFrame([], PAIRS)
    union = frames[0]
    for frame in frames[1:]:
        union = union.unionByName(frame)
    return finalize_pairs(union, max_per_prompt=max_per_prompt, max_per_user=max_per_user, seed=seed)

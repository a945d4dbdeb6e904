"""Rewards from implicit feedback: a score per shown track, and a score per response (playlist).

A track's reward adds up the weights of its events (a skip is early when less than ``early_skip`` of
the track played), clipped to ``[-clip, clip]``. A response's reward is the mean over its shown tracks
(tracks without events count 0) plus the response-level events (thumbs, refine), clipped to
``[-thumbs_clip, thumbs_clip]``.
"""

from __future__ import annotations

from collections.abc import Mapping

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from data_prep.schemas import RESPONSE_EVENTS, RESPONSE_REWARDS, TRACK_EVENTS, TRACK_REWARDS

DEFAULT_WEIGHTS: Mapping[str, float] = {
    "play": 0.0,
    "complete": 1.0,
    "save": 2.0,
    "like": 1.5,
    "skip_early": -1.0,
    "skip_late": -0.25,
    "dislike": -2.0,
    "remove": -2.0,
    "thumbs_up": 1.0,
    "thumbs_down": -1.0,
    "refine": 0.0,  # a refinement asks for more, it does not say the playlist was bad
}
_DIGITS = 6  # rounding keeps sums independent of the order Spark adds them in


def event_weight(weights: Mapping[str, float], early_skip: float) -> Column:
    """The weight of one interaction row; a skip with unknown play time counts as early."""
    played = F.col("ms_played") / F.col("track_ms")
    late = F.col("track_ms").isNotNull() & (F.col("track_ms") > 0) & (played >= early_skip)
    skip = F.when(late, F.lit(weights["skip_late"])).otherwise(F.lit(weights["skip_early"]))
    weight = F.when(F.col("event") == "skip", skip)
    for event in TRACK_EVENTS + RESPONSE_EVENTS:
        if event != "skip":
            weight = weight.when(F.col("event") == event, F.lit(float(weights[event])))
    return weight.otherwise(F.lit(0.0))


def _clip(value: Column, bound: float) -> Column:
    return F.least(F.greatest(value, F.lit(-bound)), F.lit(bound))


def track_rewards(
    interactions: DataFrame,
    *,
    weights: Mapping[str, float] = DEFAULT_WEIGHTS,
    early_skip: float = 0.25,
    clip: float = 3.0,
) -> DataFrame:
    """Reward of each (response, track) with track-level events.

    Args:
        interactions: Valid interactions (``response_id, track_id, event, ms_played, track_ms``).
        weights: Weight per event, with ``skip_early``/``skip_late`` instead of ``skip``.
        early_skip: Fraction of the track below which a skip is early.
        clip: Bound on the absolute reward of one track.

    Returns:
        Rows of :data:`data_prep.schemas.TRACK_REWARDS`.
    """
    tracks = interactions.where(F.col("event").isin(*TRACK_EVENTS))
    summed = tracks.groupBy("response_id", "track_id").agg(
        F.sum(event_weight(weights, early_skip)).alias("total")
    )
    rewarded = summed.withColumn("reward", F.round(_clip(F.col("total"), clip), _DIGITS))
    return rewarded.select(*TRACK_REWARDS.fieldNames())


def response_rewards(
    responses: DataFrame,
    interactions: DataFrame,
    *,
    weights: Mapping[str, float] = DEFAULT_WEIGHTS,
    early_skip: float = 0.25,
    clip: float = 3.0,
    thumbs_clip: float = 1.0,
) -> DataFrame:
    """Reward of every response: mean track reward over the shown playlist plus the thumbs bonus.

    Args:
        responses: Valid responses (``response_id, track_ids``).
        interactions: Valid interactions.
        weights: As in :func:`track_rewards`, plus ``thumbs_up``, ``thumbs_down``, ``refine``.
        early_skip: As in :func:`track_rewards`.
        clip: As in :func:`track_rewards`.
        thumbs_clip: Bound on the absolute response-level bonus.

    Returns:
        Rows of :data:`data_prep.schemas.RESPONSE_REWARDS`, one per response.
    """
    shown = responses.select("response_id", "track_ids")
    per_track = track_rewards(interactions, weights=weights, early_skip=early_skip, clip=clip)
    # Only tracks of the playlist count: an event on another track says nothing about this one.
    on_playlist = per_track.join(shown, "response_id").where(F.array_contains("track_ids", F.col("track_id")))
    track_sum = on_playlist.groupBy("response_id").agg(F.sum("reward").alias("track_sum"))
    bonus = (
        interactions.where(F.col("event").isin(*RESPONSE_EVENTS))
        .groupBy("response_id")
        .agg(F.sum(event_weight(weights, early_skip)).alias("bonus"))
    )
    joined = shown.join(track_sum, "response_id", "left").join(bonus, "response_id", "left")
    mean = F.coalesce(F.col("track_sum"), F.lit(0.0)) / F.greatest(F.size("track_ids"), F.lit(1))
    reward = mean + _clip(F.coalesce(F.col("bonus"), F.lit(0.0)), thumbs_clip)
    return joined.select("response_id", F.round(reward, _DIGITS).alias("reward")).select(
        *RESPONSE_REWARDS.fieldNames()
    )

"""Rewards from implicit feedback: a value per shown track, position-bias weights, a score per response.

A track's reward adds up the weights of its events (a plain skip is early when less than
``early_skip`` of the track played; MSSD's ``skip_1/2/3`` carry their own weights), clipped to
``[-clip, clip]``. Users examine fewer tracks further down a playlist, so a late track's silence
says less than an early one's: each position ``p`` gets an examination propensity ``θ_p`` estimated
from the logs (:func:`position_propensity`), and a track's *value* is its reward times
``min(1/θ_p, max_ipw)`` (inverse propensity weighting). A response's reward is the mean value over
its shown tracks (tracks without events count 0), clipped; an explicit thumbs up or down replaces
it with the thumbs weight (the latest thumb wins).
"""

from __future__ import annotations

from collections.abc import Mapping

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from data_prep.schemas import PROPENSITY, RESPONSE_EVENTS, RESPONSE_REWARDS, TRACK_EVENTS, TRACK_VALUES
from data_prep.settings import DEFAULT_WEIGHTS

_DIGITS = 6  # rounding keeps sums independent of the order Spark adds them in
THUMBS = ("thumbs_up", "thumbs_down")


def event_weight(weights: Mapping[str, float], early_skip: float) -> Column:
    """The weight of one interaction row; a plain skip with unknown play time counts as early."""
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
    """Reward of each (response, track) with track-level events: ``response_id, track_id, reward``.

    Args:
        interactions: Valid interactions (``response_id, track_id, event, ms_played, track_ms``).
        weights: Weight per event, with ``skip_early``/``skip_late`` instead of ``skip``.
        early_skip: Fraction of the track below which a plain skip is early.
        clip: Bound on the absolute reward of one track.
    """
    tracks = interactions.where(F.col("event").isin(*TRACK_EVENTS))
    summed = tracks.groupBy("response_id", "track_id").agg(
        F.sum(event_weight(weights, early_skip)).alias("total")
    )
    return summed.select(
        "response_id", "track_id", F.round(_clip(F.col("total"), clip), _DIGITS).alias("reward")
    )


def shown_tracks(responses: DataFrame) -> DataFrame:
    """``response_id, track_id, position``: each track of each playlist at its first 0-based position."""
    exploded = responses.select("response_id", F.posexplode("track_ids").alias("position", "track_id"))
    return exploded.groupBy("response_id", "track_id").agg(F.min("position").alias("position"))


def position_propensity(
    responses: DataFrame, interactions: DataFrame, *, max_ipw: float = 10.0, min_support: int = 20
) -> DataFrame:
    """Examination propensity per playlist position, relative to the first position.

    Estimator: a track that a user started always leaves a track-level event (play, skip, complete,
    …), so the share of shown tracks at position ``p`` with any event estimates how often ``p`` is
    examined. ``θ_p`` is that share divided by the share at position 0, made non-increasing (a running
    minimum) and floored at ``1/max_ipw``. Positions shown fewer than ``min_support`` times take the
    estimate of the last supported position before them.

    Args:
        responses: Valid responses (``response_id, track_ids``).
        interactions: Valid interactions.
        max_ipw: Largest inverse propensity weight.
        min_support: Fewest shown tracks for a position to get its own estimate.

    Returns:
        Rows of :data:`data_prep.schemas.PROPENSITY`, one per position shown.
    """
    events = (
        interactions.where(F.col("event").isin(*TRACK_EVENTS))
        .select("response_id", "track_id")
        .distinct()
        .withColumn("_seen", F.lit(1))
    )
    shown = shown_tracks(responses).join(events, ["response_id", "track_id"], "left")
    per_position = shown.groupBy("position").agg(
        F.count(F.lit(1)).alias("shown"), F.count("_seen").alias("examined")
    )
    rate = F.when(F.col("shown") >= min_support, F.col("examined") / F.col("shown"))
    first = Window.orderBy("position").rowsBetween(Window.unboundedPreceding, Window.currentRow)
    everything = Window.orderBy("position").rowsBetween(Window.unboundedPreceding, Window.unboundedFollowing)
    with_rate = per_position.withColumn("_rate", rate)
    base = F.first(F.col("_rate"), ignorenulls=True).over(everything)
    # No examined track at the first supported position (e.g. thumbs-only logs): no estimate, θ = 1.
    relative = with_rate.withColumn("_rel", F.try_divide(F.col("_rate"), base))
    running = F.min("_rel").over(first)  # min ignores unsupported (null) positions
    floor = F.lit(1.0 / max_ipw)
    theta = F.greatest(F.coalesce(F.least(running, F.lit(1.0)), F.lit(1.0)), floor)
    return relative.select(
        "position", "shown", "examined", F.round(theta, _DIGITS).alias("propensity")
    ).select(*PROPENSITY.fieldNames())


def track_values(
    responses: DataFrame,
    interactions: DataFrame,
    propensity: DataFrame | None,
    *,
    weights: Mapping[str, float] = DEFAULT_WEIGHTS,
    early_skip: float = 0.25,
    clip: float = 3.0,
) -> DataFrame:
    """Every shown track with its reward and its position-weighted value.

    Args:
        responses: Valid responses (``response_id, track_ids``).
        interactions: Valid interactions.
        propensity: Output of :func:`position_propensity`, or None for no position-bias correction.
        weights: As in :func:`track_rewards`.
        early_skip: As in :func:`track_rewards`.
        clip: As in :func:`track_rewards`.

    Returns:
        Rows of :data:`data_prep.schemas.TRACK_VALUES`; tracks without events have reward 0.
    """
    rewards = track_rewards(interactions, weights=weights, early_skip=early_skip, clip=clip)
    # Only tracks of the playlist count: an event on another track says nothing about this one.
    shown = shown_tracks(responses).join(rewards, ["response_id", "track_id"], "left")
    shown = shown.withColumn("reward", F.coalesce("reward", F.lit(0.0)))
    if propensity is None:
        weight = F.lit(1.0)
    else:
        shown = shown.join(F.broadcast(propensity.select("position", "propensity")), "position", "left")
        weight = 1.0 / F.coalesce(F.col("propensity"), F.lit(1.0))
    return shown.withColumn("value", F.round(F.col("reward") * weight, _DIGITS)).select(
        *TRACK_VALUES.fieldNames()
    )


def response_rewards(
    responses: DataFrame,
    interactions: DataFrame,
    values: DataFrame,
    *,
    weights: Mapping[str, float] = DEFAULT_WEIGHTS,
    clip: float = 3.0,
) -> DataFrame:
    """Reward of every response: the mean track value over its playlist, unless a thumb says otherwise.

    Args:
        responses: Valid responses (``response_id, track_ids``).
        interactions: Valid interactions (thumbs are read from here).
        values: Output of :func:`track_values`.
        weights: ``thumbs_up`` and ``thumbs_down`` weights.
        clip: Bound on the absolute implicit reward.

    Returns:
        Rows of :data:`data_prep.schemas.RESPONSE_REWARDS`, one per response.
    """
    summed = values.groupBy("response_id").agg(F.sum("value").alias("_sum"))
    thumb_weight = F.when(F.col("event") == "thumbs_up", F.lit(weights["thumbs_up"])).otherwise(
        F.lit(weights["thumbs_down"])
    )
    thumbs = (
        interactions.where(F.col("event").isin(*THUMBS))
        .withColumn("_w", thumb_weight)
        .groupBy("response_id")
        # The latest thumb wins; on equal times the more positive one, so the pick is deterministic.
        .agg(F.max_by("_w", F.struct("ts", "_w")).alias("_thumb"))
    )
    shown = responses.select("response_id", F.size("track_ids").alias("_n"))
    joined = shown.join(summed, "response_id", "left").join(thumbs, "response_id", "left")
    implicit = _clip(F.coalesce(F.col("_sum"), F.lit(0.0)) / F.greatest(F.col("_n"), F.lit(1)), clip)
    reward = F.coalesce(F.col("_thumb"), implicit)
    return joined.select("response_id", F.round(reward, _DIGITS).alias("reward")).select(
        *RESPONSE_REWARDS.fieldNames()
    )

"""The four ways feedback becomes a preference pair; each a pure transform to rows of ``schemas.PAIRS``.

Every strategy reads ``scored`` responses: one row per valid response with ``response_id,
session_id, turn, prompt_id, user_key, split, track_ids, candidates_tracks, track_ids_tracks, reward,
prompt, completion`` (see :mod:`data_prep.job`). Caps and de-duplication come after, in
:func:`data_prep.pairs.finalize_pairs`. A strategy never emits a tie or a pair whose answers read
the same.

- ``response``: two playlists shown for the same request (regenerations, A/B variants) with the same
  candidates; the higher reward is chosen when it leads by ``min_margin``.
- ``edit``: the shown playlist (rejected) against itself with the tracks the user skipped early,
  disliked or removed taken out, each replaced, where possible, by a candidate the user saved or
  liked elsewhere in the session (chosen). Rewards are mean track values, so the margin is what the
  edit gained. With ``edit_rejected="truncated"`` the rejected side is the shown playlist cut to the
  chosen's length, so the pair differs in which tracks it holds and never in how many (DPO otherwise
  learns from every edit pair that shorter answers win).
- ``refinement``: after a ``refine`` event, each playlist of the next turn is chosen over the earlier
  playlist, for the refined request, when its reward is higher (the earlier tracks that are not
  among the new candidates are named ``c0``, as in open generation).
- ``liked_disliked``: within one shown playlist, each liked track over each disliked track, as
  one-track answers (CPCD's explicit feedback).
"""

from __future__ import annotations

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from data_prep.render import render_answer
from data_prep.schemas import PAIRS, TRACK_EVENTS
from data_prep.settings import EditRejected
from data_prep.splits import pair_id

_DIGITS = 6
NEGATIVE_EVENTS = ("dislike", "remove", "skip_1", "skip_2")
POSITIVE_EVENTS = ("save", "like")


def _select(df: DataFrame, strategy: str, **columns: Column) -> DataFrame:
    margin = F.round(columns["reward_chosen"] - columns["reward_rejected"], _DIGITS)
    out = df.select(
        *[columns[name].alias(name) for name in ("prompt", "chosen", "rejected", "pair_id", "prompt_id")],
        columns["user_key"].alias("user_key"),
        F.round(columns["reward_chosen"], _DIGITS).alias("reward_chosen"),
        F.round(columns["reward_rejected"], _DIGITS).alias("reward_rejected"),
        margin.alias("margin"),
        F.lit(strategy).alias("strategy"),
        columns["split"].alias("split"),
    )
    return (
        out.where(F.col("margin") > 0).where(F.col("chosen") != F.col("rejected")).select(*PAIRS.fieldNames())
    )


def response_pairs(scored: DataFrame, *, min_margin: float) -> DataFrame:
    """Pairs of responses to one prompt (same session, turn, request, user and candidates)."""
    a, b = scored.alias("a"), scored.alias("b")
    joined = a.join(
        b,
        (F.col("a.prompt_id") == F.col("b.prompt_id"))
        & (F.col("a.user_key") == F.col("b.user_key"))
        & (F.col("a.candidates") == F.col("b.candidates"))
        # Rounded like the margin it becomes: 0.7 - 0.4 is 0.29999999999999993, still a 0.3 margin.
        & (F.round(F.col("a.reward") - F.col("b.reward"), _DIGITS) >= F.lit(min_margin))
        & (F.col("a.reward") > F.col("b.reward")),
    )
    return _select(
        joined,
        "response",
        prompt=F.col("a.prompt"),
        chosen=F.col("a.completion"),
        rejected=F.col("b.completion"),
        pair_id=pair_id(F.col("a.prompt_id"), F.col("a.response_id"), F.col("b.response_id")),
        prompt_id=F.col("a.prompt_id"),
        user_key=F.col("a.user_key"),
        reward_chosen=F.col("a.reward"),
        reward_rejected=F.col("b.reward"),
        split=F.col("a.split"),
    )


def _track_flags(interactions: DataFrame, early_skip: float) -> DataFrame:
    """``response_id, track_id, negative, positive`` for every track with track-level events."""
    played = F.col("ms_played") / F.col("track_ms")
    late = F.col("track_ms").isNotNull() & (F.col("track_ms") > 0) & (played >= early_skip)
    # A skip with unknown play time is early, as in rewards.event_weight (else `late` is null here).
    negative = F.col("event").isin(*NEGATIVE_EVENTS) | (
        (F.col("event") == "skip") & ~F.coalesce(late, F.lit(False))
    )
    tracks = interactions.where(F.col("event").isin(*TRACK_EVENTS))
    return tracks.groupBy("response_id", "track_id").agg(
        F.max(negative).alias("negative"),
        F.max(F.col("event").isin(*POSITIVE_EVENTS)).alias("positive"),
        F.max(F.col("event") == "like").alias("liked"),
        F.max(F.col("event") == "dislike").alias("disliked"),
    )


def _value_map(values: DataFrame, keys: list[str], column: str) -> DataFrame:
    entries = F.collect_list(F.struct("track_id", "value"))
    return values.groupBy(*keys).agg(F.map_from_entries(entries).alias(column))


def _mean_value(tracks: Column, *maps: Column) -> Column:
    looked_up = F.transform(
        tracks, lambda t: F.coalesce(*[F.try_element_at(m, t["track_id"]) for m in maps], F.lit(0.0))
    )
    total = F.aggregate(looked_up, F.lit(0.0), lambda acc, v: acc + v)
    return total / F.greatest(F.size(tracks), F.lit(1))


def edit_pairs(
    scored: DataFrame,
    interactions: DataFrame,
    values: DataFrame,
    *,
    min_margin: float,
    early_skip: float,
    rejected: EditRejected = "shown",
) -> DataFrame:
    """Shown playlist (rejected) vs the same with its negative tracks dropped or replaced (chosen).

    Args:
        scored: Scored, rendered responses (module docstring).
        interactions: Valid interactions.
        values: Track values (:func:`data_prep.rewards.track_values`).
        min_margin: Smallest gain in mean track value that pairs.
        early_skip: Fraction of the track below which a plain skip is early (and the track negative).
        rejected: ``shown``: the playlist as shown; ``truncated``: its first tracks, as many as the
            chosen holds (a negative dropped from the tail then leaves no pair).
    """
    flags = _track_flags(interactions, early_skip)
    negatives = flags.where("negative").groupBy("response_id").agg(F.collect_set("track_id").alias("_neg"))
    sessions = scored.select("response_id", "session_id")
    positive_values = (
        flags.where("positive AND NOT negative")
        .join(values, ["response_id", "track_id"])
        .join(sessions, "response_id")
        .groupBy("session_id", "track_id")
        .agg(F.max("value").alias("value"))
    )
    empty = F.create_map().cast("map<string,double>")
    df = (
        scored.join(negatives, "response_id")
        .join(_value_map(positive_values, ["session_id"], "_pos"), "session_id", "left")
        .join(_value_map(values, ["response_id"], "_vals"), "response_id", "left")
        .withColumn("_pos", F.coalesce("_pos", empty))
        .withColumn("_vals", F.coalesce("_vals", empty))
    )
    shown = F.col("track_ids_tracks")
    is_negative = lambda t: F.array_contains(F.col("_neg"), t["track_id"])  # noqa: E731
    spares = F.filter(
        F.col("candidates_tracks"),
        lambda t: (
            F.map_contains_key(F.col("_pos"), t["track_id"]) & ~F.array_contains("track_ids", t["track_id"])
        ),
    )

    def edited(t: Column, i: Column) -> Column:
        # The k-th negative track (k counted from 1) is replaced by the k-th spare, when there is one.
        k = F.size(F.filter(F.slice(shown, F.lit(1), i), is_negative)) + 1
        return F.when(is_negative(t), F.try_element_at(spares, k)).otherwise(t)

    df = df.withColumn("_chosen", F.filter(F.transform(shown, edited), lambda t: t.isNotNull()))
    df = df.where(F.size("_chosen") > 0)
    if rejected == "truncated":
        df = df.withColumn("_rejected", F.slice(shown, F.lit(1), F.size("_chosen")))
    else:
        df = df.withColumn("_rejected", shown)
    pairs = _select(
        df,
        "edit",
        prompt=F.col("prompt"),
        chosen=render_answer(F.col("_chosen"), F.col("candidates_tracks")),
        rejected=F.col("completion")
        if rejected == "shown"
        else render_answer(F.col("_rejected"), F.col("candidates_tracks")),
        pair_id=pair_id(F.col("prompt_id"), F.concat("response_id", F.lit(":edit")), F.col("response_id")),
        prompt_id=F.col("prompt_id"),
        user_key=F.col("user_key"),
        reward_chosen=_mean_value(F.col("_chosen"), F.col("_vals"), F.col("_pos")),
        reward_rejected=_mean_value(F.col("_rejected"), F.col("_vals")),
        split=F.col("split"),
    )
    return pairs.where(F.col("margin") >= F.lit(min_margin))


def refinement_pairs(scored: DataFrame, interactions: DataFrame) -> DataFrame:
    """The next turn's playlists over the playlist that drew a ``refine`` event, for the refined prompt."""
    refined = interactions.where(F.col("event") == "refine").select("response_id").distinct()
    before = scored.join(refined, "response_id").alias("b")
    after = scored.alias("a")
    joined = before.join(
        after,
        (F.col("a.session_id") == F.col("b.session_id"))
        & (F.col("a.user_key") == F.col("b.user_key"))
        & (F.col("a.turn") == F.col("b.turn").cast("long") + 1),  # long: turn 2**31 - 1 must not overflow
    )
    return _select(
        joined,
        "refinement",
        prompt=F.col("a.prompt"),
        chosen=F.col("a.completion"),
        rejected=render_answer(F.col("b.track_ids_tracks"), F.col("a.candidates_tracks")),
        pair_id=pair_id(F.col("a.prompt_id"), F.col("a.response_id"), F.col("b.response_id")),
        prompt_id=F.col("a.prompt_id"),
        user_key=F.col("a.user_key"),
        reward_chosen=F.col("a.reward"),
        reward_rejected=F.col("b.reward"),
        split=F.col("a.split"),
    )


def liked_disliked_pairs(scored: DataFrame, interactions: DataFrame, values: DataFrame) -> DataFrame:
    """Each liked track over each disliked track shown in the same playlist, as one-track answers."""
    flags = _track_flags(interactions, early_skip=0.0).join(values, ["response_id", "track_id"])
    liked = flags.where("liked AND NOT disliked").select(
        "response_id", F.col("track_id").alias("_liked"), F.col("reward").alias("_liked_reward")
    )
    disliked = flags.where("disliked AND NOT liked").select(
        "response_id", F.col("track_id").alias("_disliked"), F.col("reward").alias("_disliked_reward")
    )
    df = scored.join(liked, "response_id").join(disliked, "response_id")

    def track(column: str) -> Column:
        return F.filter(F.col("track_ids_tracks"), lambda t: t["track_id"] == F.col(column))

    return _select(
        df,
        "liked_disliked",
        prompt=F.col("prompt"),
        chosen=render_answer(track("_liked"), F.col("candidates_tracks")),
        rejected=render_answer(track("_disliked"), F.col("candidates_tracks")),
        pair_id=pair_id(
            F.col("prompt_id"),
            F.concat_ws(":", "response_id", "_liked"),
            F.concat_ws(":", "response_id", "_disliked"),
        ),
        prompt_id=F.col("prompt_id"),
        user_key=F.col("user_key"),
        reward_chosen=F.col("_liked_reward"),
        reward_rejected=F.col("_disliked_reward"),
        split=F.col("split"),
    )

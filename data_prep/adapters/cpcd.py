"""CPCD adapter: Google's Conversational Playlist Curation Dataset → canonical responses, interactions, catalog.

CPCD (Chaganty et al., SIGIR 2023) holds conversations between a user and a human "wizard" who searched a
music catalog and showed tracks; the user liked or disliked some of them. Mapping:

- one **response** per turn: ``response_id = "cpcd:<conversation id>:<turn>"``, ``request`` = the turn's
  ``user_query``, ``history`` = the earlier user queries of the conversation, ``track_ids`` = the tracks
  shown in the turn that have metadata (``search_results`` flattened in order, deduplicated, then any
  liked or disliked id of the turn not among them), ``candidates`` = the same list,
  ``policy = "wizard:cpcd"``. CPCD has no user ids and no times: ``session_id`` and ``user_id`` are the
  conversation id, and ``ts`` is synthetic (2023-03-01 00:00 UTC plus one minute per turn, monotone
  within a conversation).
- one **interaction** per liked (``like``) and disliked (``dislike``) id, at its index in ``track_ids``,
  with the turn's ``ts``; ``ms_played``/``track_ms`` are null.
- one **catalog** row per track id in ``tracks`` (title, artists joined with ", ", release title).
- one **goals** row per conversation: its ``goal_playlist`` (the tracks the user finally kept), for
  retrieval evaluation (:data:`GOALS`, defined here: data_prep.schemas does not know it).

Quarantine reasons: conversations ``malformed_json``, ``wrong_type``, ``missing_field:{id,turns,tracks}``,
``duplicate_id``; turns ``missing_field:user_query``, ``empty_request``, ``no_track_with_metadata``;
likes/dislikes ``missing_field:track_id``, ``unknown_track_id`` (no metadata), ``turn_quarantined``,
``duplicate_event``; tracks ``missing_field:{title,artist}``; goals ``empty_goal_playlist``.
"""

from __future__ import annotations

from typing import Any

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import ArrayType, MapType, StringType, StructField, StructType

from data_prep.adapters.common import (
    catalog_from_entries,
    conform,
    find_files,
    flag,
    flag_duplicates,
    good,
    known_text,
    publish,
    read_json_lines,
    union_all,
)
from data_prep.schemas import CATALOG, INTERACTIONS, RESPONSES, STRINGS
from data_prep.session import cut_lineage
from data_prep.validation import quarantine_rows

# Titles and artists are read as text: a JSON list arrives as its JSON text and is joined by _joined.
TRACK_META = StructType([StructField(n, StringType()) for n in ("track_ids", "track_titles", "track_artists", "track_release_titles")])  # fmt: skip
TURN = StructType(
    [
        StructField("user_query", StringType()),
        StructField("system_response", StringType()),
        StructField("search_queries", STRINGS),
        StructField("search_results", ArrayType(STRINGS)),
        StructField("liked_results", STRINGS),
        StructField("disliked_results", STRINGS),
    ]
)
CONVERSATION = StructType(
    [
        StructField("id", StringType()),
        StructField("turns", ArrayType(TURN)),
        StructField("tracks", MapType(StringType(), TRACK_META)),
        StructField("goal_playlist", STRINGS),
    ]
)
REQUIRED = ("id", "turns", "tracks")
# The goal playlist of each conversation (session), for retrieval evaluation.
GOALS = StructType([StructField("session_id", StringType()), StructField("goal_track_ids", STRINGS)])

START_TS = 1_677_628_800  # 2023-03-01 00:00:00 UTC, the month CPCD was published
TURN_SECONDS = 60
POLICY = "wizard:cpcd"


def _empty() -> Column:
    return F.array().cast("array<string>")


def _joined(text: Column) -> Column:
    """A text field that may hold a JSON list of strings, as one string joined with ", "."""
    as_list = F.array_join(F.from_json(text, STRINGS), ", ")
    return F.when(F.trim(text).startswith("["), F.coalesce(as_list, text)).otherwise(text)


def _has_metadata(tracks: Column, track_id: Column) -> Column:
    meta = tracks[track_id]
    return known_text(_joined(meta["track_titles"])) & known_text(_joined(meta["track_artists"]))


def check_conversations(parsed: DataFrame) -> DataFrame:
    """Parsed conversations (:func:`read_json_lines` over :data:`CONVERSATION`) with ``duplicate_id`` flagged."""
    return flag_duplicates(parsed, ["id"], "duplicate_id")


def catalog_entries(conversations: DataFrame) -> DataFrame:
    """One metadata entry per (conversation, track id) of the ``tracks`` maps."""
    entries = conversations.select(F.explode("tracks").alias("track_id", "m"))
    return entries.select(
        "track_id",
        _joined(F.col("m.track_titles")).alias("title"),
        _joined(F.col("m.track_artists")).alias("artist"),
        _joined(F.col("m.track_release_titles")).alias("album"),
    )


def check_turns(conversations: DataFrame) -> DataFrame:
    """One checked row per turn of good conversations, with its response fields.

    Returns:
        ``raw, reason, response_id, session_id, turn, ts, request, history, track_ids, liked, disliked``.
    """
    turns = conversations.select("id", "tracks", "turns", F.posexplode("turns").alias("turn", "t"))
    shown = F.array_distinct(
        F.concat(
            F.flatten(F.coalesce("t.search_results", F.array().cast("array<array<string>>"))),
            F.coalesce("t.liked_results", _empty()),
            F.coalesce("t.disliked_results", _empty()),
        )
    )
    tracks = F.col("tracks")
    earlier = F.slice(F.transform("turns", lambda t: t["user_query"]), 1, F.col("turn"))
    rows = turns.select(
        F.to_json(F.struct(F.col("id").alias("conversation_id"), "turn", "t")).alias("raw"),
        F.concat_ws(":", F.lit("cpcd"), "id", "turn").alias("response_id"),
        F.col("id").alias("session_id"),
        F.col("turn").cast("int").alias("turn"),
        F.timestamp_seconds(F.lit(START_TS) + F.col("turn") * TURN_SECONDS).alias("ts"),
        F.col("t.user_query").alias("request"),
        F.filter(earlier, lambda q: q.isNotNull()).alias("history"),
        F.filter(F.filter(shown, lambda x: x.isNotNull()), lambda x: _has_metadata(tracks, x)).alias(
            "track_ids"
        ),
        F.coalesce("t.liked_results", _empty()).alias("liked"),
        F.coalesce("t.disliked_results", _empty()).alias("disliked"),
    )
    return rows.withColumn(
        "reason",
        F.coalesce(
            F.when(F.col("request").isNull(), F.lit("missing_field:user_query")),
            F.when(F.trim("request") == "", F.lit("empty_request")),
            F.when(F.size("track_ids") == 0, F.lit("no_track_with_metadata")),
        ),
    )


def check_feedback(turns: DataFrame, column: str, event: str) -> DataFrame:
    """One checked interaction per id in ``turns[column]`` (``liked`` or ``disliked``), as ``event``."""
    ids = turns.select(
        "response_id",
        "ts",
        "track_ids",
        F.col("reason").alias("turn_reason"),
        F.explode(column).alias("track_id"),
    )
    position = (F.array_position("track_ids", F.col("track_id")) - 1).cast("int")
    rows = ids.select(
        F.to_json(F.struct("response_id", "track_id", F.lit(event).alias("event"))).alias("raw"),
        F.coalesce(
            F.when(F.col("track_id").isNull(), F.lit("missing_field:track_id")),
            F.when(position < 0, F.lit("unknown_track_id")),
            F.when(F.col("turn_reason").isNotNull(), F.lit("turn_quarantined")),
        ).alias("reason"),
        "response_id",
        "track_id",
        position.alias("position"),
        F.lit(event).alias("event"),
        "ts",
    )
    return flag_duplicates(rows, ["response_id", "track_id"], "duplicate_event")


def check_goals(conversations: DataFrame) -> DataFrame:
    """One checked goals row per good conversation; an empty goal playlist is quarantined."""
    rows = conversations.select(
        F.to_json(F.struct("id", "goal_playlist")).alias("raw"),
        F.lit(None).cast("string").alias("reason"),
        F.col("id").alias("session_id"),
        F.coalesce("goal_playlist", _empty()).alias("goal_track_ids"),
    )
    return flag(rows, F.when(F.size("goal_track_ids") == 0, F.lit("empty_goal_playlist")))


def responses(turns: DataFrame) -> DataFrame:
    """Good turns as canonical responses."""
    return conform(
        good(turns).select(
            "*",
            F.col("session_id").alias("user_id"),
            F.col("track_ids").alias("candidates"),
            F.lit(POLICY).alias("policy"),
        ),
        RESPONSES,
    )


def conversation_counts(conversations: DataFrame) -> DataFrame:
    """One row of input counts over good conversations (turns, liked and disliked ids, tracks, goals)."""

    def total(per_turn: Any) -> Column:
        return F.sum(F.aggregate("turns", F.lit(0).cast("long"), lambda acc, t: acc + per_turn(t)))

    return conversations.select(
        F.count(F.lit(1)).alias("conversations"),
        F.sum(F.size("turns")).alias("turns"),
        total(lambda t: F.size(F.coalesce(t["liked_results"], _empty()))).alias("liked"),
        total(lambda t: F.size(F.coalesce(t["disliked_results"], _empty()))).alias("disliked"),
        F.sum(F.size(F.coalesce("goal_playlist", _empty()))).alias("goal_tracks"),
        F.sum(F.size("tracks")).alias("track_entries"),
    )


def turn_counts(turns: DataFrame) -> DataFrame:
    """One row of per-turn feedback counts over all turns (quarantined ones included)."""
    liked, disliked = F.size("liked"), F.size("disliked")
    return turns.select(
        F.count_if((liked > 0) | (disliked > 0)).alias("turns_with_feedback"),
        F.count_if((liked > 0) & (disliked > 0)).alias("turns_with_like_and_dislike"),
        F.sum(liked * disliked).alias("liked_x_disliked"),
    )


def run(spark: SparkSession, input: str, out: str) -> dict[str, Any]:
    """Ingest CPCD JSON Lines (a file, or a directory of ``*.jsonl[.gz]``) into ``out``; returns the manifest.

    Raises:
        InputSchemaError: The input is unreadable or a file lacks ``id``, ``turns`` or ``tracks``.
        RowAccountingError: Rows were lost or invented (a bug).
    """
    files = find_files(input, ["*.jsonl", "*.jsonl.gz"], "cpcd")
    parsed = read_json_lines(spark, files, CONVERSATION, REQUIRED, "cpcd")
    conversations = check_conversations(parsed).transform(cut_lineage)
    ok = good(conversations)
    tracks = catalog_from_entries(catalog_entries(ok)).transform(cut_lineage)
    turns = check_turns(ok).transform(cut_lineage)
    liked = check_feedback(turns, "liked", "like").transform(cut_lineage)
    disliked = check_feedback(turns, "disliked", "dislike").transform(cut_lineage)
    goals = check_goals(ok).transform(cut_lineage)

    row = conversation_counts(ok).first()
    feedback = turn_counts(turns).first()
    assert row is not None and feedback is not None
    counts = {k: int(v or 0) for k, v in {**row.asDict(), **feedback.asDict()}.items()}
    checked = {
        "conversations": (conversations.count(), conversations),
        "turns": (counts["turns"], turns),
        "liked": (counts["liked"], liked),
        "disliked": (counts["disliked"], disliked),
        "tracks": (ok.select(F.explode(F.map_keys("tracks"))).distinct().count(), tracks),
        "goals": (counts["conversations"], goals),
    }
    quarantine = [quarantine_rows(frame, name) for name, (_, frame) in checked.items()]
    frames = {
        "responses": responses(turns),
        "interactions": conform(good(liked).unionByName(good(disliked)), INTERACTIONS),
        "catalog": conform(good(tracks), CATALOG),
        "goals": conform(good(goals), GOALS),
        "quarantine": union_all(quarantine),
    }
    counts["tracks_with_conflicting_metadata"] = tracks.where(F.col("variants") > 1).count()
    inputs = {name: (input, rows_in, frame) for name, (rows_in, frame) in checked.items()}
    return publish(out, frames, inputs, {"kind": "cpcd", "input": input}, counts)

"""Prompt and playlist rendering inside Spark, as column expressions that write what playlist.prompts writes.

The text of a prompt or an answer is built from SQL string functions, with no Python in the
executors; the fixed words come from playlist.prompts' constants. A property test checks that both
renderings agree character for character.
"""

from __future__ import annotations

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql.types import ArrayType, StringType, StructField, StructType

from data_prep.schemas import TRACK
from playlist.keys import FIELD_SEP
from playlist.prompts import (
    CANDIDATES_HEADING,
    HISTORY_HEADING,
    NO_CANDIDATES,
    REQUEST_PREFIX,
    SYSTEM_PROMPT,
)

# TRACK plus the candidate line's attribute text.
SHOWN_TRACK = StructType([*TRACK.fields, StructField("attrs", StringType())])


def describe(genre: Column, year: Column, energy: Column, valence: Column) -> Column:
    """:func:`playlist.prompts.describe` as a column: ``folk, 1972, energy 0.20, valence 0.15``.

    ``format_number(x, '0.00')`` is Java's ``DecimalFormat``, which rounds the double's exact binary
    value half to even, as Python's ``:.1f`` does (0.25 → 0.2, 0.35 → 0.3, -0.0 → -0.0); the two differ
    only on non-finite values and beyond 1e16, which the catalog's validation (energy in [0, 1]) keeps out.
    """
    parts = F.array(
        F.when(genre != "", genre),
        F.when(year != 0, year.cast("string")),
        F.when(energy.isNotNull(), F.concat(F.lit("energy "), _two_decimals(energy))),
        F.when(valence.isNotNull(), F.concat(F.lit("valence "), _two_decimals(valence))),
    )
    return F.concat_ws(", ", parts)  # skips the nulls, as describe skips empty attributes


def _two_decimals(value: Column) -> Column:
    return F.call_function("format_number", value, F.lit("0.00"))


def _message(role: str, content: Column) -> Column:
    return F.struct(F.lit(role).alias("role"), content.alias("content"))


def _cid(position: Column) -> Column:
    """``c<position>`` for a 1-based position (0 for a track outside the candidates)."""
    return F.concat(F.lit("c"), position.cast("string"))


def render_answer(playlist: Column, candidates: Column) -> Column:
    """The assistant message (a one-element message array) naming ``playlist`` tracks among ``candidates``.

    Args:
        playlist: An array of track structs (``track_id, artist, title``), in order.
        candidates: The prompt's candidate tracks; tracks outside them get id ``c0``.
    """
    ids = F.reverse(F.transform(candidates, lambda t: t["track_id"]))
    count = F.size(candidates)

    def line(t: Column) -> Column:
        # Counted from the end, like playlist.prompts' {id: index} dict, where a repeated id's last index wins.
        from_end = F.array_position(ids, t["track_id"])
        position = F.when(from_end > 0, count - from_end + 1).otherwise(F.lit(0))
        return F.concat(_cid(position), F.lit(" | "), t["artist"], F.lit(" - "), t["title"])

    content = F.coalesce(F.array_join(F.transform(playlist, line), "\n"), F.lit(""))
    return F.array(_message("assistant", content))


def render_prompt(request: Column, history: Column, candidates: Column) -> Column:
    """The system and user messages for ``request``, earlier ``history`` requests and ``candidates``.

    Args:
        request: The request text.
        history: Earlier requests of the conversation, oldest first (null entries skipped).
        candidates: An array of :data:`SHOWN_TRACK` (with ``attrs``).
    """
    earlier = F.filter(F.coalesce(history, F.array().cast("array<string>")), lambda h: h.isNotNull())
    lines = F.transform(
        candidates,
        lambda t, i: F.concat(
            _cid(i + 1), F.lit(" | "), t["artist"], F.lit(" - "), t["title"], F.lit(" | "), t["attrs"]
        ),
    )
    user = F.concat_ws(
        "\n\n",
        F.concat(F.lit(REQUEST_PREFIX), request),
        F.when(
            F.size(earlier) > 0,
            F.concat(
                F.lit(HISTORY_HEADING),
                F.array_join(F.transform(earlier, lambda h: F.concat(F.lit("- "), h)), "\n"),
            ),
        ),
        F.when(
            F.size(candidates) > 0, F.concat(F.lit(CANDIDATES_HEADING), F.array_join(lines, "\n"))
        ).otherwise(F.lit(NO_CANDIDATES)),
    )
    return F.array(_message("system", F.lit(SYSTEM_PROMPT)), _message("user", user))


def with_attrs(tracks: DataFrame) -> DataFrame:
    """Add ``attrs``, the text a candidate line shows after the title, to rows with ``genre, year, energy, valence``."""
    return tracks.withColumn(
        "attrs", describe(F.col("genre"), F.col("year"), F.col("energy"), F.col("valence"))
    )


def attach_tracks(responses: DataFrame, catalog: DataFrame) -> DataFrame:
    """Add ``candidates_tracks`` and ``track_ids_tracks``: arrays of :data:`SHOWN_TRACK`, in logged order.

    The ids of both lists go through one explode, one catalog join and one regrouping; each list then
    looks its tracks up in the regrouped row (a playlist is mostly drawn from its own candidates).

    Args:
        responses: Valid responses (``response_id, candidates, track_ids``).
        catalog: Valid catalog; every id of a valid response is in it.

    Returns:
        ``responses`` with the two track arrays (empty, never null, when the id list is empty).
    """
    tracks = with_attrs(catalog.select(*TRACK.fieldNames()))
    ids = F.array_union(F.col("candidates"), F.col("track_ids"))
    exploded = responses.select("response_id", F.explode(ids).alias("track_id"))
    track = F.struct(*[F.col(name) for name in SHOWN_TRACK.fieldNames()])
    shown = (
        exploded.join(tracks, "track_id").groupBy("response_id").agg(F.collect_list(track).alias("_shown"))
    )
    empty = F.array().cast(ArrayType(SHOWN_TRACK))

    def looked_up(column: str) -> Column:
        found = F.transform(column, lambda i: F.try_element_at("_by_id", i))
        return F.coalesce(F.filter(found, lambda t: t.isNotNull()), empty)

    # A map per row (keys distinct: array_union dedups the ids), built once and read by both lists.
    by_id = F.map_from_entries(F.transform("_shown", lambda t: F.struct(t["track_id"], t)))
    out = responses.join(shown, "response_id", "left").withColumn("_by_id", by_id)
    out = out.withColumn("candidates_tracks", looked_up("candidates"))
    return out.withColumn("track_ids_tracks", looked_up("track_ids")).drop("_shown", "_by_id")


def _shuffled(candidates: Column, *key_parts: Column) -> Column:
    """``candidates`` sorted by ``sha2(key_parts…, track_id)``: a seeded order that ignores the logged one."""
    keyed = F.transform(
        candidates,
        lambda t: F.struct(
            F.sha2(F.concat_ws(FIELD_SEP, *key_parts, t["track_id"]), 256).alias("key"), t.alias("t")
        ),
    )
    return F.transform(F.array_sort(keyed), lambda k: k["t"])


def shuffle_train_candidates(responses: DataFrame, seed: int) -> DataFrame:
    """Put the candidates of training rows (``split == "train"``) in a seeded order; others keep theirs.

    The order sorts each track by ``sha2(seed, prompt_id, track_id)``: the same prompt shows the same
    order in every row (both sides of a pair share their prompt), and a track's place does not depend on
    where retrieval put it.

    Args:
        responses: Output of :func:`attach_tracks` with ``prompt_id`` and ``split``.
        seed: The job's seed.
    """
    shuffled = _shuffled(F.col("candidates_tracks"), F.lit(str(seed)), F.col("prompt_id"))
    return responses.withColumn(
        "candidates_tracks", F.when(F.col("split") == "train", shuffled).otherwise(F.col("candidates_tracks"))
    )


def reshuffled_copies(rendered: DataFrame, copies: int, seed: int) -> DataFrame:
    """Training rows (``split == "train"``) and ``copies - 1`` more of each, every copy showing the candidates
    in its own seeded order, re-rendered (prompt and answer ids follow the order); other rows once.

    An augmentation for small models trained from scratch: the same choice under other candidate ids,
    so a model learns to read the id it names, not to remember where a track stood.

    Args:
        rendered: Output of :func:`render_responses` (``candidates_tracks, track_ids_tracks, prompt_id``).
        copies: Rows per training row, at least 1 (1 returns ``rendered``).
        seed: The job's seed.
    """
    if copies <= 1:
        return rendered
    extra = rendered.where(F.col("split") == "train").withColumn(
        "_copy", F.explode(F.sequence(F.lit(1), F.lit(copies - 1)))
    )
    order = _shuffled(
        F.col("candidates_tracks"), F.lit(str(seed)), F.col("prompt_id"), F.col("_copy").cast("string")
    )
    extra = render_responses(extra.withColumn("candidates_tracks", order)).drop("_copy")
    return rendered.unionByName(extra)


def render_responses(responses: DataFrame) -> DataFrame:
    """Add ``prompt`` (system + user messages) and ``completion`` (one assistant message).

    Args:
        responses: Output of :func:`attach_tracks` (with ``request, history``).

    Returns:
        ``responses`` with the two message columns.
    """
    prompt = render_prompt(F.col("request"), F.col("history"), F.col("candidates_tracks"))
    completion = render_answer(F.col("track_ids_tracks"), F.col("candidates_tracks"))
    return responses.withColumn("prompt", prompt).withColumn("completion", completion)

"""Prompt and playlist rendering inside Spark, delegating every character of format to encore.prompts."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql.types import ArrayType

from data_prep.schemas import MESSAGES, TRACK
from encore.prompts import Track, render_playlist, render_prompt


def _tracks(rows: Sequence[Any] | None) -> list[Track]:
    return [Track(**row.asDict()) for row in rows or []]


# No type hints on the UDFs: Spark would try to read them as pandas UDF hints.
@F.udf(returnType=MESSAGES)
def _prompt_udf(request, history, candidates):
    return render_prompt(request, list(history or []), _tracks(candidates))


@F.udf(returnType=MESSAGES)
def _answer_udf(playlist, candidates):
    return [{"role": "assistant", "content": render_playlist(_tracks(playlist), _tracks(candidates))}]


def render_answer(playlist: Column, candidates: Column) -> Column:
    """The assistant message (a one-element message array) naming ``playlist`` tracks among ``candidates``.

    Args:
        playlist: An array of :data:`data_prep.schemas.TRACK`, in order.
        candidates: The prompt's candidate tracks (same struct); tracks outside them get id ``c0``.
    """
    return _answer_udf(playlist, candidates)


def _track_list(responses: DataFrame, catalog: DataFrame, column: str) -> DataFrame:
    """``response_id`` and the catalog attributes of the ids in ``column``, in their logged order."""
    exploded = responses.select("response_id", F.posexplode(column).alias("pos", "track_id"))
    joined = exploded.join(catalog.select(*TRACK.fieldNames()), "track_id")
    track = F.struct(*[F.col(name) for name in TRACK.fieldNames()])
    collected = joined.groupBy("response_id").agg(
        F.sort_array(F.collect_list(F.struct("pos", track.alias("t")))).alias("x")
    )
    return collected.select("response_id", F.transform("x", lambda s: s["t"]).alias(f"{column}_tracks"))


def attach_tracks(responses: DataFrame, catalog: DataFrame) -> DataFrame:
    """Add ``candidates_tracks`` and ``track_ids_tracks``: arrays of :data:`data_prep.schemas.TRACK`.

    Args:
        responses: Valid responses (``response_id, candidates, track_ids``).
        catalog: Valid catalog; every id of a valid response is in it.

    Returns:
        ``responses`` with the two track arrays (empty, never null, when the id list is empty).
    """
    out = responses
    for column in ("candidates", "track_ids"):
        tracks = _track_list(responses, catalog, column)
        name = f"{column}_tracks"
        out = out.join(tracks, "response_id", "left")
        out = out.withColumn(name, F.coalesce(F.col(name), F.array().cast(ArrayType(TRACK))))
    return out


def render_responses(responses: DataFrame) -> DataFrame:
    """Add ``prompt`` (system + user messages) and ``completion`` (one assistant message).

    Args:
        responses: Output of :func:`attach_tracks` (with ``request, history``).

    Returns:
        ``responses`` with the two message columns, rendered by :mod:`encore.prompts`.
    """
    prompt = _prompt_udf(F.col("request"), F.col("history"), F.col("candidates_tracks"))
    completion = render_answer(F.col("track_ids_tracks"), F.col("candidates_tracks"))
    return responses.withColumn("prompt", prompt).withColumn("completion", completion)

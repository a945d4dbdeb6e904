"""MSSD adapter: Spotify's Music Streaming Sessions Dataset (skip logs) → canonical responses, interactions, catalog.

Input: a directory holding ``*_log.csv`` (the session logs) and ``*tracknames*.csv`` (track, artist and
album names of the same rows, joined on ``session_id`` + ``session_position``), or a log CSV with its
names CSV beside it. Mapping:

- one **response** per listening session: ``response_id = "mssd:<session_id>"``, ``track_ids`` = the
  session's tracks in ``session_position`` order, no ``candidates``, ``policy = "mssd:<context_type>"``.
  MSSD has no user ids and no request text: ``user_id`` is the session id, and ``request`` is a
  template built from the session's first ``context_type`` ("Play something from my editorial
  playlist"), so it says where the music came from, not what the listener asked for.
- one **interaction** per log row, at the row's index in ``track_ids``: ``event`` is ``skip_1``,
  ``skip_2`` or ``skip_3`` by the earliest true skip label, else ``complete`` when ``not_skipped``,
  else ``play`` (all four labels false: the track played without a skip or completion label).
  ``ms_played``/``track_ms`` are null (MSSD has only the labels); ``ts`` is the row's ``date`` plus
  ``hour_of_day`` (hour precision), and the response's ``ts`` is that of its first row.
- one **catalog** row per track id: title, artist and album from the names file.

Quarantine reasons: log rows ``malformed_csv``, ``missing_field:{session_id,session_position,track_id_clean}``,
``missing_skip_label``, ``duplicate_position``, ``unknown_track_id`` (no names); names rows
``malformed_csv``, ``missing_field:{session_id,session_position}``, ``duplicate_position``,
``no_log_row``; tracks ``missing_field:{title,artist}``; sessions ``no_valid_rows``,
``missing_field:context_type``. The upstream ``skip_prediction`` column is ignored.
"""

from __future__ import annotations

import gzip
import operator
from functools import reduce
from pathlib import Path
from typing import Any

from pyspark.sql import Column, DataFrame, SparkSession, Window
from pyspark.sql import functions as F
from pyspark.sql.types import BooleanType, DataType, IntegerType, StringType, StructField, StructType

from data_prep.adapters.common import (
    CORRUPT,
    catalog_from_entries,
    conform,
    find_files,
    flag,
    flag_duplicates,
    good,
    publish,
    union_all,
)
from data_prep.schemas import CATALOG, INTERACTIONS, RESPONSES
from data_prep.session import cut_lineage
from data_prep.validation import InputSchemaError, quarantine_rows

LABELS = ("skip_1", "skip_2", "skip_3", "not_skipped")
LOG_REQUIRED = ("session_id", "session_position", "track_id_clean", *LABELS, "context_type")
NAMES_REQUIRED = ("session_id", "session_position", "track_name", "artist_name")
KEY = ("session_id", "session_position")
# Types of the columns used; every other column is read as text and only kept in quarantined rows.
TYPES: dict[str, DataType] = {"session_position": IntegerType(), "hour_of_day": IntegerType()} | {
    label: BooleanType() for label in LABELS
}
OPTIONAL = ("date", "hour_of_day", "album_name")


def _raw(df: DataFrame) -> DataFrame:
    """Add ``raw`` (the CSV line when it did not parse, else the row as JSON) and ``reason``."""
    row = F.to_json(F.struct(*[c for c in df.columns if c != CORRUPT]))
    bad = F.col(CORRUPT).isNotNull()
    return df.select(
        F.when(bad, F.col(CORRUPT)).otherwise(row).alias("raw"),
        F.when(bad, F.lit("malformed_csv")).alias("reason"),
        *[c for c in df.columns if c != CORRUPT],
    )


def _missing(df: DataFrame, columns: tuple[str, ...]) -> DataFrame:
    return flag(df, *[F.when(F.col(c).isNull(), F.lit(f"missing_field:{c}")) for c in columns])


def event() -> Column:
    """The canonical event of a log row: the earliest true skip label, complete, or play (all false)."""
    all_false = reduce(operator.and_, [F.col(label) == F.lit(False) for label in LABELS])
    return F.coalesce(
        *[F.when(F.col(name), F.lit(name)) for name in ("skip_1", "skip_2", "skip_3")],
        F.when(F.col("not_skipped"), F.lit("complete")),
        F.when(all_false, F.lit("play")),
    )


def check_log(log: DataFrame) -> DataFrame:
    """Log rows with ``raw``, ``reason`` (all but ``unknown_track_id``), ``event`` and ``ts``."""
    df = _missing(_raw(log), ("session_id", "session_position", "track_id_clean"))
    ts = F.try_to_timestamp(F.format_string("%s %02d", "date", "hour_of_day"), F.lit("yyyy-MM-dd HH"))
    df = df.withColumn("event", event()).withColumn("ts", ts)
    df = flag(df, F.when(F.col("event").isNull(), F.lit("missing_skip_label")))
    return flag_duplicates(df, list(KEY), "duplicate_position")


def check_names(names: DataFrame, log: DataFrame) -> DataFrame:
    """Names rows with ``raw`` and ``reason``; a row must match a good log row on session and position."""
    df = flag_duplicates(_missing(_raw(names), KEY), list(KEY), "duplicate_position")
    keys = good(log).select(*KEY, F.lit(True).alias("_matched"))
    df = df.join(keys, list(KEY), "left")
    return flag(df, F.when(F.col("_matched").isNull(), F.lit("no_log_row"))).drop("_matched")


def catalog_entries(log: DataFrame, names: DataFrame) -> DataFrame:
    """One metadata entry per good log row: its track id and the names of the same row (if any)."""
    named = good(names).select(*KEY, F.col("track_name").alias("title"), F.col("artist_name").alias("artist"),
                               F.col("album_name").alias("album"))  # fmt: skip
    rows = good(log).select(*KEY, F.col("track_id_clean").alias("track_id"))
    return rows.join(named, list(KEY), "left").drop(*KEY)


def flag_unknown_tracks(log: DataFrame, catalog: DataFrame) -> DataFrame:
    """Flag log rows whose track is not in the (good) catalog as ``unknown_track_id``."""
    known = good(catalog).select(F.col("track_id").alias("track_id_clean"), F.lit(True).alias("_known"))
    df = log.join(known, "track_id_clean", "left")
    return flag(df, F.when(F.col("_known").isNull(), F.lit("unknown_track_id"))).drop("_known")


def interactions(log: DataFrame) -> DataFrame:
    """Good log rows as canonical interactions, positioned by ``session_position`` within the session."""
    order = Window.partitionBy("session_id").orderBy("session_position")
    return conform(
        good(log).select(
            F.concat(F.lit("mssd:"), "session_id").alias("response_id"),
            F.col("track_id_clean").alias("track_id"),
            (F.row_number().over(order) - 1).alias("position"),
            "event",
            "ts",
        ),
        INTERACTIONS,
    )


def check_sessions(log: DataFrame) -> DataFrame:
    """One checked row per session id in the log, with its response fields."""
    rows = F.struct("session_position", F.col("track_id_clean").alias("track_id"), "context_type", "ts")
    played = good(log).groupBy("session_id").agg(F.array_sort(F.collect_list(rows)).alias("rows"))
    sessions = log.where(F.col("session_id").isNotNull()).select("session_id").distinct()
    df = sessions.join(played, "session_id", "left")
    first = F.col("rows")[0]
    context = F.filter("rows", lambda r: r["context_type"].isNotNull())[0]["context_type"]
    df = df.select(
        F.to_json(F.struct("session_id")).alias("raw"),
        F.coalesce(
            F.when(F.col("rows").isNull(), F.lit("no_valid_rows")),
            F.when(context.isNull(), F.lit("missing_field:context_type")),
        ).alias("reason"),
        F.concat(F.lit("mssd:"), "session_id").alias("response_id"),
        "session_id",
        F.col("session_id").alias("user_id"),
        F.lit(0).alias("turn"),
        first["ts"].alias("ts"),
        F.concat(F.lit("Play something from my "), F.regexp_replace(context, "_", " ")).alias("request"),
        F.array().cast("array<string>").alias("history"),
        F.array().cast("array<string>").alias("candidates"),
        F.transform("rows", lambda r: r["track_id"]).alias("track_ids"),
        F.concat(F.lit("mssd:"), context).alias("policy"),
    )
    return df


def _read_csv(spark: SparkSession, files: list[str], required: tuple[str, ...], what: str) -> DataFrame:
    """Read CSV files with a header, typing the known columns; every file must have the same header."""
    headers = {}
    for name in files:
        with (gzip.open if name.endswith(".gz") else open)(name, "rt", encoding="utf-8") as f:
            headers[name] = next(f, "").rstrip("\r\n").split(",")
    columns = headers[files[0]]
    for name, header in headers.items():
        missing = [c for c in required if c not in header]
        if missing:
            raise InputSchemaError(f"{what}: {name} has no column '{missing[0]}'")
        if header != columns:
            raise InputSchemaError(f"{what}: {name} has a different header from {files[0]}")
    fields = [StructField(c, TYPES.get(c, StringType())) for c in columns]
    schema = StructType([*fields, StructField(CORRUPT, StringType())])
    df = spark.read.csv(files, schema=schema, header=True, enforceSchema=False, multiLine=True, escape='"',
                        mode="PERMISSIVE", columnNameOfCorruptRecord=CORRUPT)  # fmt: skip
    return df.select("*", *[F.lit(None).cast("string").alias(c) for c in OPTIONAL if c not in columns])


def _input_files(path: str) -> tuple[list[str], list[str]]:
    p = Path(path)
    logs = find_files(path, ["*_log.csv", "*_log.csv.gz"], "mssd")
    folder = p if p.is_dir() else p.parent
    names = sorted(str(f) for f in folder.glob("*tracknames*.csv*"))
    if p.is_file():
        prefix = p.name.split("_log.csv")[0]
        names = [n for n in names if Path(n).name.startswith(prefix)] or names
    if not names:
        raise InputSchemaError(f"mssd: no *tracknames*.csv beside {path}")
    return logs, names


def run(spark: SparkSession, input: str, out: str) -> dict[str, Any]:
    """Ingest MSSD logs and track names (see the module docstring for ``input``); returns the manifest.

    Raises:
        InputSchemaError: A file is unreadable or lacks a required column.
        RowAccountingError: Rows were lost or invented (a bug).
    """
    log_files, name_files = _input_files(input)
    log_raw = _read_csv(spark, log_files, LOG_REQUIRED, "mssd log")
    labelled = check_log(log_raw).transform(cut_lineage)
    names_raw = _read_csv(spark, name_files, NAMES_REQUIRED, "mssd names")
    names = check_names(names_raw, labelled).transform(cut_lineage)
    tracks = catalog_from_entries(catalog_entries(labelled, names)).transform(cut_lineage)
    log = flag_unknown_tracks(labelled, tracks).transform(cut_lineage)
    sessions = check_sessions(log).transform(cut_lineage)

    track_ids = good(labelled).select("track_id_clean").distinct().count()
    session_ids = log_raw.select("session_id").where("session_id IS NOT NULL").distinct().count()
    checked = {
        "log": (", ".join(log_files), log_raw.count(), log),
        "tracknames": (", ".join(name_files), names_raw.count(), names),
        "tracks": (input, track_ids, tracks),
        "sessions": (input, session_ids, sessions),
    }
    frames = {
        "responses": conform(good(sessions), RESPONSES),
        "interactions": interactions(log),
        "catalog": conform(good(tracks), CATALOG),
        "quarantine": union_all([quarantine_rows(frame, name) for name, (_, _, frame) in checked.items()]),
    }
    events = {f"events_{r['event']}": int(r["count"]) for r in good(log).groupBy("event").count().collect()}
    stats = {"rows": checked["log"][1], "sessions": checked["sessions"][1], **dict(sorted(events.items()))}
    stats["tracks_with_conflicting_metadata"] = tracks.where(F.col("variants") > 1).count()
    inputs = {name: (path, rows_in, frame) for name, (path, rows_in, frame) in checked.items()}
    return publish(out, frames, inputs, {"kind": "mssd", "input": input}, stats)

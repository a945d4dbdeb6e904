"""MPD adapter: Spotify's Million Playlist Dataset → canonical responses (curated playlists) and catalog.

Input: JSON Lines of playlists (``*.jsonl`` or ``*.jsonl.gz``, one playlist a line), or the original MPD
slice files (``mpd.slice.*.json``: ``info`` and ``playlists[]``); a file, or a directory holding one of
the two kinds. Mapping:

- one **response** per playlist: ``response_id = session_id = user_id = "mpd:<pid>"`` (MPD has no
  user ids; in the JSON Lines export the pid was renumbered upstream), ``turn = 0``, ``request`` = the
  playlist ``name`` (a title such as "road trip", written by a person), ``track_ids`` = its tracks in
  order (the id of ``spotify:track:<id>``, the same id as the Spotify catalog exports), no
  ``candidates``, ``policy = "curated:mpd"``, ``ts`` = ``modified_at`` where the file has it, else null.
  These are curated answers with no feedback: they become SFT examples, and ``interactions`` is an
  empty dataset with the canonical schema.
- one **catalog** row per distinct track: ``track_name``, ``artist_name`` (and ``album_name``,
  ``duration_ms`` from slice files).

Quarantine reasons: playlists ``malformed_json``, ``wrong_type``, ``missing_field:{pid,name,tracks}``,
``empty_request``, ``empty_playlist``, ``duplicate_pid``, ``no_known_track``; track entries
``playlist_quarantined``, ``missing_field:track_uri``, ``unknown_track_id``; tracks
``missing_field:{title,artist}``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import ArrayType, IntegerType, LongType, StringType, StructField, StructType

from data_prep.adapters.common import (
    CORRUPT,
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
from data_prep.schemas import CATALOG, INTERACTIONS, RESPONSES
from data_prep.session import cut_lineage
from data_prep.validation import InputSchemaError, quarantine_rows

TRACK = StructType(
    [
        StructField("pos", IntegerType()),
        StructField("artist_name", StringType()),
        StructField("track_uri", StringType()),
        StructField("track_name", StringType()),
        StructField("album_name", StringType()),
        StructField("duration_ms", LongType()),
    ]
)
PLAYLIST = StructType(
    [
        StructField("pid", LongType()),
        StructField("name", StringType()),
        StructField("modified_at", LongType()),
        StructField("tracks", ArrayType(TRACK)),
    ]
)
SLICE = StructType([StructField("playlists", ArrayType(PLAYLIST)), StructField(CORRUPT, StringType())])
REQUIRED = ("pid", "name", "tracks")
POLICY = "curated:mpd"
LINES = ["*.jsonl", "*.jsonl.gz"]
SLICES = ["mpd.slice.*.json"]


def check_playlists(parsed: DataFrame) -> DataFrame:
    """Parsed playlists (``raw``, ``reason`` and :data:`PLAYLIST`'s columns) with the playlist-level checks."""
    df = flag(
        parsed,
        F.when(F.trim("name") == "", F.lit("empty_request")),
        F.when(F.size("tracks") == 0, F.lit("empty_playlist")),
    )
    return flag_duplicates(df, ["pid"], "duplicate_pid")


def track_entries(playlists: DataFrame) -> DataFrame:
    """One row per track entry of every playlist that has a track list, in playlist order.

    Returns:
        ``raw, reason`` (``playlist_quarantined`` or ``missing_field:track_uri``), ``pid, index, track_id,
        title, artist, album, duration_ms``.
    """
    entries = playlists.where(F.col("tracks").isNotNull()).select(
        "pid", F.col("reason").alias("_playlist_reason"), F.posexplode("tracks").alias("index", "t")
    )
    uri = F.col("t.track_uri")
    return entries.select(
        F.to_json(F.struct("pid", "index", "t")).alias("raw"),
        F.coalesce(
            F.when(F.col("_playlist_reason").isNotNull(), F.lit("playlist_quarantined")),
            F.when(~known_text(uri), F.lit("missing_field:track_uri")),
        ).alias("reason"),
        "pid",
        "index",
        F.substring_index(uri, ":", -1).alias("track_id"),
        F.col("t.track_name").alias("title"),
        F.col("t.artist_name").alias("artist"),
        F.col("t.album_name").alias("album"),
        F.col("t.duration_ms").alias("duration_ms"),
    )


def flag_unknown_tracks(entries: DataFrame, catalog: DataFrame) -> DataFrame:
    """Flag entries whose track is not in the (good) catalog as ``unknown_track_id``."""
    known = good(catalog).select("track_id", F.lit(True).alias("_known"))
    df = entries.join(known, "track_id", "left")
    return flag(df, F.when(F.col("_known").isNull(), F.lit("unknown_track_id"))).drop("_known")


def flag_empty_playlists(playlists: DataFrame, entries: DataFrame) -> DataFrame:
    """Flag playlists left without any good entry as ``no_known_track``; add their ``track_ids``."""
    ordered = (
        good(entries)
        .groupBy("pid")
        .agg(F.array_sort(F.collect_list(F.struct("index", "track_id"))).alias("_entries"))
        .select("pid", F.transform("_entries", lambda e: e["track_id"]).alias("track_ids"))
    )
    df = playlists.join(ordered, "pid", "left")
    return flag(df, F.when(F.col("track_ids").isNull(), F.lit("no_known_track")))


def responses(playlists: DataFrame) -> DataFrame:
    """Good playlists as canonical responses."""
    rid = F.concat(F.lit("mpd:"), F.col("pid").cast("string"))
    return conform(
        good(playlists).select(
            rid.alias("response_id"),
            rid.alias("session_id"),
            rid.alias("user_id"),
            F.lit(0).alias("turn"),
            F.timestamp_seconds("modified_at").alias("ts"),
            F.trim("name").alias("request"),
            F.array().cast("array<string>").alias("history"),
            F.array().cast("array<string>").alias("candidates"),
            "track_ids",
            F.lit(POLICY).alias("policy"),
        ),
        RESPONSES,
    )


def _read_slices(spark: SparkSession, files: list[str]) -> DataFrame:
    """Read MPD slice files into ``raw``, ``reason`` and :data:`PLAYLIST`'s columns, one row a playlist."""
    try:
        slices = spark.read.json(files, schema=SLICE, multiLine=True, mode="PERMISSIVE",
                                 columnNameOfCorruptRecord=CORRUPT)  # fmt: skip
        path = F.col("_metadata.file_path")
        bad = slices.where(F.col("playlists").isNull()).select(path.alias("file"), CORRUPT).collect()
    except Exception as exc:
        raise InputSchemaError(f"mpd: cannot read {', '.join(files)}: {exc}".splitlines()[0]) from exc
    if bad:
        what = "is not valid JSON" if bad[0][CORRUPT] is not None else "has no column 'playlists'"
        raise InputSchemaError(f"mpd: {bad[0]['file']} {what}")
    playlists = slices.select(F.explode("playlists").alias("p"))
    reason = F.coalesce(*[F.when(F.col(f"p.{c}").isNull(), F.lit(f"missing_field:{c}")) for c in REQUIRED])
    return playlists.select(F.to_json("p").alias("raw"), reason.alias("reason"), "p.*")


def _read(spark: SparkSession, path: str) -> tuple[DataFrame, list[str]]:
    p = Path(path)
    if p.is_dir():
        lines = [str(f) for pattern in LINES for f in sorted(p.glob(pattern))]
        slices = [str(f) for pattern in SLICES for f in sorted(p.glob(pattern))]
        if lines and slices:
            raise InputSchemaError(
                f"mpd: {path} holds both JSON Lines ({Path(lines[0]).name}) and MPD slice files "
                f"({Path(slices[0]).name}); pass one file, or a directory of one kind"
            )
    files = find_files(path, LINES + SLICES, "mpd")
    if files[0].endswith(".json"):
        return _read_slices(spark, files), files
    return read_json_lines(spark, files, PLAYLIST, REQUIRED, "mpd"), files


def run(spark: SparkSession, input: str, out: str) -> dict[str, Any]:
    """Ingest MPD playlists (see the module docstring for ``input``) into ``out``; returns the manifest.

    Raises:
        InputSchemaError: A file is unreadable or lacks a required column.
        RowAccountingError: Rows were lost or invented (a bug).
    """
    parsed, files = _read(spark, input)
    basic = check_playlists(parsed).transform(cut_lineage)
    listed = track_entries(basic).transform(cut_lineage)
    tracks = catalog_from_entries(listed.where(known_text(F.col("track_id")))).transform(cut_lineage)
    entries = flag_unknown_tracks(listed, tracks).transform(cut_lineage)
    playlists = flag_empty_playlists(basic, entries).transform(cut_lineage)

    counts = basic.select(
        F.count(F.lit(1)).alias("n"), F.sum(F.size(F.coalesce("tracks", F.array()))).alias("entries")
    ).first()
    assert counts is not None
    rows_in = {
        "playlists": int(counts["n"]),
        "track_entries": int(counts["entries"] or 0),
        "tracks": listed.where(known_text(F.col("track_id"))).select("track_id").distinct().count(),
    }
    checked = {"playlists": playlists, "track_entries": entries, "tracks": tracks}
    empty = spark.createDataFrame([], INTERACTIONS)
    frames = {
        "responses": responses(playlists),
        "interactions": empty,
        "catalog": conform(good(tracks), CATALOG),
        "quarantine": union_all([quarantine_rows(frame, name) for name, frame in checked.items()]),
    }
    stats = {
        "playlists": rows_in["playlists"],
        "track_entries": rows_in["track_entries"],
        "distinct_tracks": rows_in["tracks"],
        "tracks_with_conflicting_metadata": tracks.where(F.col("variants") > 1).count(),
    }
    inputs = {name: (", ".join(files), rows_in[name], frame) for name, frame in checked.items()}
    return publish(out, frames, inputs, {"kind": "mpd", "input": input}, stats)

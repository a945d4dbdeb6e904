"""Helpers shared by the public-data adapters: input discovery, JSON Lines parsing, checks, publishing.

Every adapter follows the same shape: parse each input into a *checked* frame (the payload columns,
``raw`` (the row as JSON text) and ``reason`` (null for a good row, else why it is quarantined)),
derive the canonical logs from the good rows, and hand the frames to :func:`publish`, which writes
them with a manifest whose row accounting is checked.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from pyspark.sql import Column, DataFrame, SparkSession, Window
from pyspark.sql import functions as F
from pyspark.sql.types import StringType, StructField, StructType

from data_prep.manifest import (
    check_accounting,
    check_replaceable,
    fingerprint,
    input_entry,
    reason_counts,
    write_observed,
)
from data_prep.schemas import CATALOG
from data_prep.validation import InputSchemaError, missing_columns
from playlist.publish import publishing

CORRUPT = "_corrupt_record"


def find_files(path: str, patterns: Sequence[str], what: str) -> list[str]:
    """The input files: ``path`` itself, or the files in directory ``path`` matching ``patterns``.

    Raises:
        InputSchemaError: ``path`` does not exist, or the directory holds no matching file.
    """
    p = Path(path)
    if p.is_file():
        return [str(p)]
    if not p.is_dir():
        raise InputSchemaError(f"{what}: cannot read {path}: no such file or directory")
    files = sorted({str(f) for pattern in patterns for f in p.glob(pattern) if f.is_file()})
    if not files:
        raise InputSchemaError(f"{what}: {path} holds no file matching {', '.join(patterns)}")
    return files


def _first_line(exc: Exception) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def read_json_lines(
    spark: SparkSession, files: Sequence[str], schema: StructType, required: Sequence[str], what: str
) -> DataFrame:
    """Read JSON Lines into ``raw``, ``reason`` and the columns of ``schema``.

    Lines are read as text and parsed with ``from_json`` over the explicit schema, so a bad line is
    kept (as ``malformed_json`` or ``wrong_type``) instead of being dropped, and ``raw`` can go to the
    quarantine as it was. ``reason`` is also ``missing_field:<col>`` when a required value is null.

    Raises:
        InputSchemaError: A file cannot be read, holds no line, or lacks a required column in every line.
    """
    try:
        text = spark.read.text(list(files))
        lines = text.select(F.col("_metadata.file_path").alias("file"), F.col("value").alias("raw"))
        lines = lines.where(F.trim("raw") != "")  # blank lines are not rows
        empty = lines.isEmpty()
        missing = missing_columns(lines, required)
    except Exception as exc:
        raise InputSchemaError(f"{what}: cannot read {', '.join(files)}: {_first_line(exc)}") from exc
    if missing:
        raise InputSchemaError(f"{what}: " + "; ".join(f"{f} has no column '{c}'" for f, c in missing))
    if empty:
        raise InputSchemaError(f"{what}: {', '.join(files)} holds no JSON line")
    with_corrupt = StructType([*schema.fields, StructField(CORRUPT, StringType())])
    parsed = lines.select(
        "raw", F.from_json("raw", with_corrupt, {"columnNameOfCorruptRecord": CORRUPT}).alias("_j")
    )
    reason = F.coalesce(
        F.when(F.json_object_keys("raw").isNull(), F.lit("malformed_json")),
        F.when(F.col(f"_j.{CORRUPT}").isNotNull(), F.lit("wrong_type")),
        *[F.when(F.col(f"_j.{c}").isNull(), F.lit(f"missing_field:{c}")) for c in required],
    )
    return parsed.select(
        "raw", reason.alias("reason"), *[F.col(f"_j.{f.name}").alias(f.name) for f in schema]
    )


def flag(df: DataFrame, *checks: Column) -> DataFrame:
    """Keep an existing ``reason``, else set the first check that yields one."""
    return df.withColumn("reason", F.coalesce(F.col("reason"), *checks))


def flag_duplicates(df: DataFrame, keys: Sequence[str], reason: str) -> DataFrame:
    """Flag every good row but the first (by ``raw``) of each group of ``keys``."""
    window = Window.partitionBy(F.col("reason").isNull(), *keys).orderBy("raw")
    return flag(df, F.when(F.col("reason").isNull() & (F.row_number().over(window) > 1), F.lit(reason)))


def good(checked: DataFrame) -> DataFrame:
    """The rows of a checked frame that passed every check."""
    return checked.where(F.col("reason").isNull())


def union_all(frames: Sequence[DataFrame]) -> DataFrame:
    """The rows of all ``frames`` (same columns), in one frame."""
    result = frames[0]
    for frame in frames[1:]:
        result = result.unionByName(frame)
    return result


def conform(df: DataFrame, schema: StructType) -> DataFrame:
    """``df`` in exactly the columns and types of ``schema`` (absent columns become null)."""
    return df.select(
        *[
            (F.col(f.name) if f.name in df.columns else F.lit(None)).cast(f.dataType).alias(f.name)
            for f in schema
        ]
    )


def known_text(value: Column) -> Column:
    """True when a text value is present and not blank."""
    return value.isNotNull() & (F.trim(value) != "")


def catalog_from_entries(entries: DataFrame) -> DataFrame:
    """One checked catalog row per track id, from one or more metadata entries per track.

    Args:
        entries: ``track_id`` (non-null) and any :data:`data_prep.schemas.CATALOG` columns.

    Returns:
        ``raw``, ``reason`` (``missing_field:title`` / ``missing_field:artist``), ``variants`` (how many
        distinct metadata entries the track had) and the catalog columns. A complete entry is preferred,
        then the smallest, so the choice does not depend on partitioning.
    """
    fields = CATALOG.fieldNames()[1:]
    full = conform(entries, CATALOG)
    incomplete = (~known_text(F.col("title")) | ~known_text(F.col("artist"))).cast("int")
    picked = full.groupBy("track_id").agg(
        F.min(F.struct(incomplete.alias("_incomplete"), *fields)).alias("_m"),
        F.count_distinct(F.struct(*fields)).alias("variants"),
    )
    rows = picked.select("track_id", "variants", *[F.col(f"_m.{f}").alias(f) for f in fields])
    reason = F.coalesce(
        F.when(~known_text(F.col("title")), F.lit("missing_field:title")),
        F.when(~known_text(F.col("artist")), F.lit("missing_field:artist")),
    )
    raw = F.to_json(F.struct(*CATALOG.fieldNames()))
    return rows.select(raw.alias("raw"), reason.alias("reason"), "variants", *CATALOG.fieldNames())


def publish(
    out: str,
    frames: Mapping[str, DataFrame],
    inputs: Mapping[str, tuple[str, int, DataFrame]],
    header: Mapping[str, Any],
    stats: Mapping[str, int],
) -> dict[str, Any]:
    """Write the frames as Parquet under ``out`` with ``manifest.json``, atomically.

    Args:
        out: Output directory; replaced only if it is a previous output (has a manifest).
        frames: Output name (relative path) → frame.
        inputs: Input name → (path, rows read, checked frame with ``reason``).
        header: Extra manifest keys (``kind``, ``input``).
        stats: Dataset counts measured on the input, recorded under ``stats``.

    Returns:
        The manifest as written.

    Raises:
        RowAccountingError: rows in != rows out + rows quarantined for some input.
    """
    entries = {}
    for name, (path, rows_in, checked) in inputs.items():
        rows_out, by_reason = reason_counts(checked)
        entries[name] = input_entry(path, rows_in, rows_out, by_reason)
    check_accounting(entries)
    out_dir = Path(out).resolve()
    check_replaceable(out_dir)
    with publishing(out_dir) as tmp:
        written = write_observed(frames, tmp)
        outputs = {name: fingerprint(str(out_dir / name), seen) for name, seen in written.items()}
        manifest = {**header, "inputs": entries, "outputs": outputs, "stats": dict(stats)}
        (tmp / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    return manifest

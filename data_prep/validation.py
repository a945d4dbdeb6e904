"""Row-level validation of the raw logs: parse, cast, check, and split valid rows from the quarantine.

Every input row becomes exactly one output row, either valid (``reason`` null) or quarantined with
the first reason that fails, checked in this order:

- all inputs: ``invalid_utf8``, ``malformed_json``, ``missing_field:<col>`` (required columns, in
  :data:`data_prep.schemas.REQUIRED` order), ``wrong_type:<col>`` (a non-null value that does not
  cast, in schema order);
- catalog: ``energy_out_of_range`` (not a number in [0, 1]), ``duplicate_track_id``;
- responses: ``empty_request``, ``request_too_long``, ``empty_playlist``, ``unknown_track_id``
  (in ``track_ids`` or ``candidates``), ``duplicate_response_id``;
- interactions: ``missing_field:track_id`` (track-level events only), ``unknown_event``,
  ``unknown_response``, ``unknown_track_id``, ``negative_ms_played``, ``absurd_ms_played``,
  ``ts_before_response`` (an event logged before its playlist was shown), ``duplicate_event``;
- intents: ``unknown_response``, ``duplicate_response_id``.

Duplicates keep the first row by (``ts``, then the row as read), so the choice does not depend on
partitioning.

A parsed frame holds ``reason``, the columns of the canonical schema *as read* (validation adds
columns, it never rewrites these) and the row's source: ``raw``, the JSON text of a JSON Lines row,
or, for a columnar input (:func:`data_prep.inputs.parse_columns`), ``_src_<name>`` columns for the
values read under another type or name; :func:`raw_text` rebuilds the text a quarantined row shows.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F
from pyspark.sql.types import ArrayType, DataType, StringType, StructField, StructType

from data_prep.manifest import fingerprint_aggregates
from data_prep.schemas import EVENTS, QUARANTINE, TRACK_EVENTS

_CORRUPT = "_corrupt_record"
_ROW = ("_row_hash64", "_row_hash32")
SOURCE_PREFIX = "_src_"
FILL_PREFIX = "_fill_"
# Extra playback allowed beyond twice the track length before ms_played counts as absurd.
ABSURD_SLACK_MS = 10_000


class InputSchemaError(ValueError):
    """An input cannot be used at all: unreadable, or a required column is absent from a file."""


def survey_lines(lines: DataFrame, required: Sequence[str]) -> tuple[list[tuple[str, str]], dict[str, Any]]:
    """One pass over JSON text rows: the required columns each file lacks, and the rows' fingerprint.

    Args:
        lines: ``file`` and ``raw`` (one JSON object per row) columns.
        required: Columns every file must have.

    Returns:
        The sorted (file, column) pairs where a required column appears in no row of that file (empty
        when the schema is fine; files without a single parseable object are not judged here: their
        rows are quarantined as ``malformed_json``), and ``n``/``total`` of the ``raw`` rows for
        :func:`data_prep.manifest.fingerprint` (the input's row count and fingerprint, without
        reading it again).
    """
    keys = F.json_object_keys("raw")  # null for a line that is not a JSON object
    has = [F.bool_or(F.array_contains(keys, col)).alias(f"_has{i}") for i, col in enumerate(required)]
    judged = F.bool_or(F.size(keys) > 0).alias("_judged")  # some row has a key: the file's columns are known
    per_file = lines.groupBy("file").agg(*fingerprint_aggregates(lines.select("raw")), judged, *has).collect()
    missing = sorted(
        (row.file, col)
        for row in per_file
        if row["_judged"]
        for i, col in enumerate(required)
        if not row[f"_has{i}"]
    )
    seen = {"n": sum(row["n"] for row in per_file), "total": sum(row["total"] or 0 for row in per_file)}
    return missing, seen


def missing_columns(lines: DataFrame, required: Sequence[str]) -> list[tuple[str, str]]:
    """The (file, column) pairs of :func:`survey_lines`."""
    return survey_lines(lines, required)[0]


def _cast(text: Column, dtype: DataType) -> Column:
    if isinstance(dtype, StringType):
        return text
    if isinstance(dtype, ArrayType):
        return F.from_json(text, dtype)
    return text.try_cast(dtype)


def parse_lines(lines: DataFrame, schema: StructType, required: Sequence[str]) -> DataFrame:
    """Parse JSON text rows into typed columns and flag row-local problems.

    Values are first read as text, then cast, so that a value of the wrong type is reported
    as ``wrong_type:<col>`` instead of silently becoming null.

    Args:
        lines: A ``raw`` column holding one JSON object per row.
        schema: The canonical schema of the input.
        required: Columns that must be non-null.

    Returns:
        ``raw``, ``reason`` (null when the row passed so far) and the columns of ``schema``.
    """
    as_text = StructType(
        [StructField(f.name, StringType()) for f in schema] + [StructField(_CORRUPT, StringType())]
    )
    parsed = lines.select(
        "raw", F.from_json("raw", as_text, {"columnNameOfCorruptRecord": _CORRUPT}).alias("_j")
    )
    text = {f.name: F.col(f"_j.{f.name}") for f in schema}
    typed = {f.name: _cast(text[f.name], f.dataType) for f in schema}
    # Spark keeps undecodable bytes as they are; a producer that already decoded them left U+FFFD.
    replaced = [text[f.name].contains("\ufffd") for f in schema if isinstance(f.dataType, StringType)]
    bad_utf8 = ~F.is_valid_utf8("raw") | F.col("raw").contains("\ufffd")
    for r in replaced:
        bad_utf8 = bad_utf8 | F.coalesce(r, F.lit(False))
    checks = [
        F.when(bad_utf8, F.lit("invalid_utf8")),
        F.when(F.col("_j").isNull() | F.col(f"_j.{_CORRUPT}").isNotNull(), F.lit("malformed_json")),
        *[F.when(text[c].isNull(), F.lit(f"missing_field:{c}")) for c in required],
        *[
            F.when(text[f.name].isNotNull() & typed[f.name].isNull(), F.lit(f"wrong_type:{f.name}"))
            for f in schema
        ],
    ]
    return parsed.select(
        "raw", F.coalesce(*checks).alias("reason"), *[typed[f.name].alias(f.name) for f in schema]
    )


def sources(df: DataFrame) -> list[str]:
    """The columns that hold a row as read: ``raw`` for JSON text, else the schema and ``_src_`` columns."""
    if "raw" in df.columns:
        return ["raw"]
    return [c for c in df.columns if c.startswith(SOURCE_PREFIX) or (not c.startswith("_") and c != "reason")]


def raw_text(df: DataFrame) -> Column:
    """The row as JSON text: ``raw`` itself, or the columnar row rebuilt, ``_src_`` values first."""
    if "raw" in df.columns:
        return F.col("raw")
    names = [c for c in sources(df) if not c.startswith(SOURCE_PREFIX)]
    extra = [c[len(SOURCE_PREFIX) :] for c in sources(df) if c.startswith(SOURCE_PREFIX)]
    fields = [F.col(SOURCE_PREFIX + n if n in extra else n).alias(n) for n in names]
    fields += [F.col(SOURCE_PREFIX + n).alias(n) for n in extra if n not in names]
    return F.to_json(F.struct(*fields))


def _first_failure(df: DataFrame, *checks: Column) -> DataFrame:
    """Keep an existing reason, else the first check that yields one."""
    return df.withColumn("reason", F.coalesce(F.col("reason"), *checks))


def _flag_duplicates(df: DataFrame, keys: Sequence[str], reason: str) -> DataFrame:
    # Only rows valid so far compete: the partition includes whether the row has failed already.
    order = [F.col(c) for c in sources(df)]
    if "ts" in df.columns:
        order.insert(0, F.col("ts").asc_nulls_last())
    window = Window.partitionBy(F.col("reason").isNull(), *keys).orderBy(*order)
    return _first_failure(df, F.when(F.row_number().over(window) > 1, F.lit(reason)))


def _flag_absent(df: DataFrame, reference: DataFrame, key: str, ref_key: str, reason: str) -> DataFrame:
    """Flag valid-so-far rows whose non-null ``key`` is not among ``reference[ref_key]``."""
    known = reference.select(F.col(ref_key).alias("_known")).distinct()
    joined = df.join(known, df[key] == known["_known"], "left")
    flagged = _first_failure(joined, F.when(F.col(key).isNotNull() & F.col("_known").isNull(), F.lit(reason)))
    return flagged.drop("_known")


def validate_catalog(parsed: DataFrame) -> DataFrame:
    """Catalog checks on top of :func:`parse_lines`: an energy is in [0, 1], a track id appears once."""
    energy = F.col("energy")
    checked = _first_failure(
        parsed, F.when(F.isnan(energy) | (energy < 0) | (energy > 1), F.lit("energy_out_of_range"))
    )
    return _flag_duplicates(checked, ["track_id"], "duplicate_track_id")


def validate_responses(parsed: DataFrame, catalog: DataFrame, *, max_request_chars: int) -> DataFrame:
    """Response checks on top of :func:`parse_lines`.

    Args:
        parsed: Output of :func:`parse_lines` over the responses schema.
        catalog: Valid catalog rows (``track_id``).
        max_request_chars: Longest request accepted.

    Returns:
        ``parsed`` with ``reason`` completed.
    """
    df = _first_failure(
        parsed,
        F.when(F.trim("request") == "", F.lit("empty_request")),
        F.when(F.length("request") > max_request_chars, F.lit("request_too_long")),
        F.when(F.size("track_ids") == 0, F.lit("empty_playlist")),
    )
    # Identical rows share a key, and get the same verdict: a 96-bit hash of the row as read is enough.
    row = sources(df)
    df = df.withColumn(_ROW[0], F.xxhash64(*row)).withColumn(_ROW[1], F.hash(*row))
    empty = F.array().cast("array<string>")
    shown = F.array_union(F.col("track_ids"), F.coalesce("candidates", empty))
    ids = df.where(F.col("reason").isNull()).select(*_ROW, F.explode(shown).alias("track_id"))
    unknown = (
        ids.join(catalog.select("track_id"), "track_id", "left_anti")
        .select(*_ROW)
        .distinct()
        .withColumn("_unknown", F.lit(True))
    )
    df = df.join(unknown, list(_ROW), "left")
    df = _first_failure(df, F.when(F.col("_unknown"), F.lit("unknown_track_id"))).drop(*_ROW, "_unknown")
    return _flag_duplicates(df, ["response_id"], "duplicate_response_id")


def validate_interactions(parsed: DataFrame, responses: DataFrame, catalog: DataFrame) -> DataFrame:
    """Interaction checks on top of :func:`parse_lines`; a missing ``track_ms`` is the catalog's duration.

    Args:
        parsed: Output of :func:`parse_lines` over the interactions schema.
        responses: Valid responses (``response_id``).
        catalog: Valid catalog rows (``track_id``, ``duration_ms``).

    Returns:
        ``parsed`` with ``reason`` completed.
    """
    df = _first_failure(
        parsed,
        F.when(
            F.col("track_id").isNull() & F.col("event").isin(*TRACK_EVENTS), F.lit("missing_field:track_id")
        ),
        F.when(~F.col("event").isin(*EVENTS), F.lit("unknown_event")),
    )
    # Response ids are unique among valid responses: one join finds both the response and its time.
    shown = responses.select(F.col("response_id").alias("_rid"), F.col("ts").alias("_shown"))
    df = df.join(shown, df["response_id"] == shown["_rid"], "left")
    df = _first_failure(
        df, F.when(F.col("response_id").isNotNull() & F.col("_rid").isNull(), F.lit("unknown_response"))
    )
    df = _flag_absent(df, catalog, "track_id", "track_id", "unknown_track_id")
    durations = catalog.select(F.col("track_id").alias("_tid"), F.col("duration_ms").alias("_duration"))
    df = df.join(durations, df["track_id"] == durations["_tid"], "left")
    track_ms = FILL_PREFIX + "track_ms"  # taken by valid_rows; track_ms itself stays as read
    df = df.withColumn(track_ms, F.coalesce("track_ms", "_duration")).drop("_tid", "_duration")
    df = _first_failure(
        df,
        F.when(F.col("ms_played") < 0, F.lit("negative_ms_played")),
        # In double: an absurd track_ms (near 2**63) must not overflow the bound.
        F.when(
            F.col("ms_played") > 2 * F.col(track_ms).cast("double") + ABSURD_SLACK_MS,
            F.lit("absurd_ms_played"),
        ),
        F.when(F.col("ts") < F.col("_shown"), F.lit("ts_before_response")),
    ).drop("_rid", "_shown")
    return _flag_duplicates(df, ["response_id", "track_id", "position", "event", "ts"], "duplicate_event")


def validate_intents(parsed: DataFrame, responses: DataFrame) -> DataFrame:
    """Intent checks on top of :func:`parse_lines`: one intent per known response."""
    df = _flag_absent(parsed, responses, "response_id", "response_id", "unknown_response")
    return _flag_duplicates(df, ["response_id"], "duplicate_response_id")


def valid_rows(checked: DataFrame, schema: StructType) -> DataFrame:
    """The rows that passed every check, in the columns of ``schema``: arrays never null, fills applied."""
    columns = []
    for field in schema.fields:
        column = F.col(field.name)
        if FILL_PREFIX + field.name in checked.columns:
            column = F.coalesce(column, F.col(FILL_PREFIX + field.name))
        if isinstance(field.dataType, ArrayType):
            column = F.coalesce(column, F.array().cast(field.dataType))
        columns.append(column.alias(field.name))
    return checked.where(F.col("reason").isNull()).select(*columns)


def quarantine_rows(checked: DataFrame, input_name: str) -> DataFrame:
    """The rejected rows as ``input, reason, raw`` (raw made valid UTF-8 so any reader can open it)."""
    rejected = checked.where(F.col("reason").isNotNull())
    raw = F.make_valid_utf8(raw_text(rejected))
    out = rejected.select(F.lit(input_name).alias("input"), "reason", raw.alias("raw"))
    return out.select(*QUARANTINE.fieldNames())

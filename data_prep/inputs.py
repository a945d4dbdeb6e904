"""Reading the raw logs: JSON Lines as text, Parquet as typed columns, both into validation's parsed form.

JSON Lines are read as text so that bad lines survive to be quarantined, and parsed by
:func:`data_prep.validation.parse_lines`. Parquet already has types: its columns are used as they
are (no JSON round trip, which cost 10x a scan of the input), cast only where a file's type is not
the canonical one, with the same reasons (``invalid_utf8``, ``missing_field:<col>``,
``wrong_type:<col>``) as the JSON path.
"""

from __future__ import annotations

import operator
from collections.abc import Sequence
from functools import reduce
from pathlib import Path
from typing import Any

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import ArrayType, DataType, StringType, StructType

from data_prep.validation import SOURCE_PREFIX, InputSchemaError, parse_lines, survey_lines


def _is_parquet(path: str) -> bool:
    p = Path(path)
    return p.suffix == ".parquet" or (p.is_dir() and any(p.rglob("*.parquet")))


def _first_line(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


def _parquet_missing(spark: SparkSession, frame: DataFrame, required: Sequence[str]) -> list[tuple[str, str]]:
    """(file, column) pairs where a file's own schema lacks a required column (footers only, no rows read)."""
    missing = []
    for file in sorted(frame.inputFiles()):
        columns = set(spark.read.parquet(file).columns)
        missing += [(file, col) for col in required if col not in columns]
    return missing


def _lines(spark: SparkSession, path: str) -> DataFrame:
    """JSON Lines as ``file`` and ``raw`` text, blank lines dropped (they are not rows)."""
    text = spark.read.text(path)
    lines = text.select(F.col("_metadata.file_path").alias("file"), F.col("value").alias("raw"))
    return lines.where(F.trim("raw") != "")


def open_input(spark: SparkSession, path: str) -> DataFrame:
    """An input's rows as :func:`read_input` returns them, unchecked and unread (no Spark job runs)."""
    if _is_parquet(path):
        # mergeSchema: files written at different times may differ; their columns are united.
        return spark.read.option("mergeSchema", "true").parquet(path)
    return _lines(spark, path).select("raw")


def read_input(
    spark: SparkSession, name: str, path: str, required: Sequence[str]
) -> tuple[DataFrame, dict[str, Any] | None]:
    """One input as read, after checking its columns.

    Returns:
        The rows (``raw`` for JSON Lines, the file's columns for Parquet) and, for JSON Lines, their
        ``n``/``total`` for :func:`data_prep.manifest.fingerprint`, counted by the same pass as the
        check; None for Parquet, whose check reads only the footers.

    Raises:
        InputSchemaError: The input cannot be read, or a file lacks a required column.
    """
    seen = None
    try:
        if _is_parquet(path):
            rows = open_input(spark, path)
            missing = _parquet_missing(spark, rows, required)
        else:
            lines = _lines(spark, path)
            missing, seen = survey_lines(lines, required)
            rows = lines.select("raw")
    except InputSchemaError:
        raise
    except Exception as exc:
        raise InputSchemaError(f"{name}: cannot read {path}: {_first_line(exc)}") from exc
    if missing:
        detail = "; ".join(f"{file} has no column '{col}'" for file, col in missing)
        raise InputSchemaError(f"{name}: {detail}")
    return rows, seen


def _bad_text(column: Column, dtype: DataType) -> Column | None:
    """True where a string (or an array of strings) holds undecodable bytes or U+FFFD; None for other types."""

    def bad(text: Column) -> Column:
        return ~F.is_valid_utf8(text) | text.contains("\ufffd")

    if isinstance(dtype, StringType):
        return F.coalesce(bad(column), F.lit(False))
    if isinstance(dtype, ArrayType) and isinstance(dtype.elementType, StringType):
        return F.coalesce(F.exists(column, lambda t: F.coalesce(bad(t), F.lit(False))), F.lit(False))
    return None


def _cast(column: Column, source: DataType, target: DataType) -> Column:
    if isinstance(target, ArrayType) and isinstance(source, StringType):
        return F.from_json(column, target)  # a JSON array written as text
    return column.try_cast(target)


def parse_columns(rows: DataFrame, schema: StructType, required: Sequence[str]) -> DataFrame:
    """Typed columns of a columnar input, with the row-local reasons of :func:`parse_lines`.

    Args:
        rows: The input's own columns, as read.
        schema: The canonical schema.
        required: Columns that must be non-null.

    Returns:
        ``reason``, the columns of ``schema`` (null where the input lacks one) and ``_src_<name>`` for
        each column read under another type (its value as read) or not in ``schema`` at all.
    """
    types = {f.name: f.dataType for f in rows.schema}
    typed, source = {}, {}
    for f in schema:
        if f.name not in types:
            typed[f.name] = F.lit(None).cast(f.dataType)
        elif types[f.name] == f.dataType:
            typed[f.name] = F.col(f.name)
        else:
            typed[f.name] = _cast(F.col(f.name), types[f.name], f.dataType)
            source[f.name] = F.col(f.name)
    source.update({name: F.col(name) for name in types if name not in schema.fieldNames()})
    bad = [b for name, dtype in types.items() if (b := _bad_text(F.col(name), dtype)) is not None]
    checks = [
        F.when(reduce(operator.or_, bad), F.lit("invalid_utf8")) if bad else None,
        *[
            F.when(typed[c].isNull() & (source.get(c, typed[c]).isNull()), F.lit(f"missing_field:{c}"))
            for c in required
        ],
        *[
            F.when(source[n].isNotNull() & typed[n].isNull(), F.lit(f"wrong_type:{n}"))
            for n in schema.fieldNames()
            if n in source
        ],
    ]
    reason = F.coalesce(*[c for c in checks if c is not None], F.lit(None).cast("string"))
    return rows.select(
        reason.alias("reason"),
        *[typed[f.name].alias(f.name) for f in schema],
        *[column.alias(SOURCE_PREFIX + name) for name, column in source.items()],
    )


def parse_input(rows: DataFrame, schema: StructType, required: Sequence[str]) -> DataFrame:
    """:func:`parse_lines` for JSON text (a ``raw`` column), else :func:`parse_columns`."""
    if rows.columns == ["raw"]:
        return parse_lines(rows, schema, required)
    return parse_columns(rows, schema, required)

"""The manifest of a data_prep run: row accounting per input, fingerprints per output, the config."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pyspark.sql import DataFrame
from pyspark.sql import functions as F


class RowAccountingError(RuntimeError):
    """Rows were lost or invented: rows_in != rows_out + rows_quarantined for some input."""


def fingerprint(df: DataFrame) -> str:
    """Order-independent content hash: row count and the sum of xxhash64 over all columns, in hex.

    Args:
        df: Any frame without map columns.

    Returns:
        ``<rows as 8 hex digits>-<sum mod 2**64 as 16 hex digits>``; equal frames give equal strings
        whatever their partitioning or row order.
    """
    row = df.select(
        F.count(F.lit(1)).alias("n"), F.sum(F.xxhash64(*df.columns).cast("decimal(38,0)")).alias("total")
    ).first()
    assert row is not None
    total = int(row["total"] or 0) % 2**64
    return f"{row['n']:08x}-{total:016x}"


def reason_counts(checked: DataFrame) -> dict[str, int]:
    """Rows per quarantine reason of a validated frame (``reason`` null rows excluded)."""
    rows = checked.where(F.col("reason").isNotNull()).groupBy("reason").count().collect()
    return {row["reason"]: int(row["count"]) for row in sorted(rows, key=lambda r: r["reason"])}


def input_entry(path: str, rows_in: int, rows_out: int, by_reason: Mapping[str, int]) -> dict[str, Any]:
    """The manifest entry of one input."""
    return {
        "path": path,
        "rows_in": rows_in,
        "rows_out": rows_out,
        "rows_quarantined": sum(by_reason.values()),
        "quarantined_by_reason": dict(by_reason),
    }


def check_accounting(inputs: Mapping[str, Mapping[str, Any]]) -> None:
    """Raise :class:`RowAccountingError` unless rows_in = rows_out + rows_quarantined for every input."""
    bad = {
        name: (e["rows_in"], e["rows_out"], e["rows_quarantined"])
        for name, e in inputs.items()
        if e["rows_in"] != e["rows_out"] + e["rows_quarantined"]
    }
    if bad:
        detail = "; ".join(f"{n}: in={i} out={o} quarantined={q}" for n, (i, o, q) in bad.items())
        raise RowAccountingError(f"rows_in != rows_out + rows_quarantined ({detail})")

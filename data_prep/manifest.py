"""The manifest of a data_prep run: row accounting per input, fingerprints per output, the config."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from pyspark.sql import Column, DataFrame, Observation
from pyspark.sql import functions as F


class RowAccountingError(RuntimeError):
    """Rows were lost or invented: rows_in != rows_out + rows_quarantined for some input."""


def fingerprint_aggregates(df: DataFrame) -> list[Column]:
    """``n`` rows and ``total``, the sum of xxhash64 over all columns: what :func:`fingerprint` needs.

    Aggregates, so they can be observed while the frame is written (``DataFrame.observe``) instead of
    read again; ``df`` must have no map columns.
    """
    return [
        F.count(F.lit(1)).alias("n"),
        F.sum(F.xxhash64(*df.columns).cast("decimal(38,0)")).alias("total"),
    ]


def fingerprint(path: str, observed: Mapping[str, Any]) -> dict[str, Any]:
    """Manifest entry of one output: path, rows, and an order-independent content fingerprint.

    The fingerprint is the row count and the sum of xxhash64 over all columns, in hex
    (``<rows as 8 hex digits>-<sum mod 2**64 as 16 hex digits>``): equal frames give equal strings
    whatever their partitioning or row order.

    Args:
        path: Where the output was published.
        observed: ``n`` and ``total`` of :func:`fingerprint_aggregates`.
    """
    rows, total = int(observed["n"]), int(observed["total"] or 0) % 2**64
    return {"path": path, "rows": rows, "fingerprint": f"{rows:08x}-{total:016x}"}


def write_observed(
    frames: Mapping[str, DataFrame], root: Path, also: Mapping[str, Sequence[Column]] | None = None
) -> dict[str, dict[str, Any]]:
    """Write each frame as Parquet under `root`, observing its fingerprint aggregates as it is written.

    Args:
        frames: Outputs by name (their subdirectory of `root`).
        root: Where to write them.
        also: More aggregates to observe on some outputs, by name.

    Returns:
        The observed values by output name: ``n`` and ``total`` (for :func:`fingerprint`) and those of
        `also`, counted by the write itself rather than by reading the output again.
    """
    observed = {}
    for name, frame in frames.items():
        observation = Observation(f"written:{name}")
        extra = (also or {}).get(name, ())
        written = frame.observe(observation, *fingerprint_aggregates(frame), *extra)
        written.write.mode("error").parquet(str(root / name))
        observed[name] = observation.get
    return observed


def output_entry(df: DataFrame, path: str) -> dict[str, Any]:
    """:func:`fingerprint` of a frame, computed now (one job)."""
    row = df.select(*fingerprint_aggregates(df)).first()
    assert row is not None
    return fingerprint(path, row.asDict())


def reason_counts(checked: DataFrame) -> tuple[int, dict[str, int]]:
    """Valid rows and rows per quarantine reason of a validated frame, in one pass."""
    rows = checked.groupBy("reason").count().collect()
    valid = sum(int(r["count"]) for r in rows if r["reason"] is None)
    by_reason = {r["reason"]: int(r["count"]) for r in rows if r["reason"] is not None}
    return valid, dict(sorted(by_reason.items()))


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


def check_replaceable(out_dir: Path) -> None:
    """Refuse to publish over a directory that holds something other than an earlier output (no manifest).

    Raises:
        FileExistsError: ``out_dir`` is not empty and has no ``manifest.json``.
    """
    if out_dir.exists() and any(out_dir.iterdir()) and not (out_dir / "manifest.json").exists():
        raise FileExistsError(f"{out_dir} exists and is not a data_prep output; refusing to replace it")

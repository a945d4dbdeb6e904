"""Public-data adapters: map CPCD, MSSD and MPD onto encore's canonical raw logs (see docs/adapters.md).

Each adapter is a Spark job that reads one public dataset with explicit schemas and writes Parquet
directories ``responses``, ``interactions`` and ``catalog`` (plus ``goals`` for CPCD), a
``quarantine`` of the rows it could not use (``input, reason, raw``) and ``manifest.json``, where
rows in = rows out + rows quarantined for every input. The output is valid input for
:func:`data_prep.job.run`. Run one with ``encore ingest {cpcd,mssd,mpd} INPUT --out DIR``.
"""

from __future__ import annotations

from typing import Any

from pyspark.sql import SparkSession

KINDS = ("cpcd", "mssd", "mpd")


def ingest(spark: SparkSession, kind: str, input: str, out: str) -> dict[str, Any]:
    """Run the adapter for ``kind`` on ``input``, writing the canonical logs under ``out``.

    Args:
        spark: The session to run on.
        kind: ``cpcd``, ``mssd`` or ``mpd``.
        input: The dataset file or directory (see each adapter's module docstring).
        out: Output directory, replaced atomically if it holds an earlier output.

    Returns:
        The manifest, as written to ``<out>/manifest.json``.

    Raises:
        ValueError: ``kind`` is not one of :data:`KINDS`.
        InputSchemaError: The input is unreadable or lacks a required column.
    """
    if kind == "cpcd":
        from data_prep.adapters import cpcd

        return cpcd.run(spark, input, out)
    if kind == "mssd":
        from data_prep.adapters import mssd

        return mssd.run(spark, input, out)
    if kind == "mpd":
        from data_prep.adapters import mpd

        return mpd.run(spark, input, out)
    raise ValueError(f"unknown dataset kind {kind!r}; expected one of {', '.join(KINDS)}")

"""Paired differences between two models on the same eval requests: is a gap larger than its noise?

Every model answers the same held-out requests, and the simulated users replay each playlist with the
same random draws, so "B is better than A" is a question about the per-request differences, not about
two means side by side. Two means 0.01 apart can be one request that changed or forty that each moved
a little; the standard error of the mean difference tells them apart.

Example (fulfillment of three requests)::

    A = [0.80, 0.90, 0.70], B = [0.90, 0.90, 0.80]
    differences [0.10, 0.00, 0.10]: mean +0.067, standard error 0.033, better on 2, worse on 0 of 3

Rows are matched by ``prompt_id``; a request that either model left unscored for a metric (None, e.g.
no simulated replay) is left out of that metric's pairs.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from evaluation.score import EvalResult

# The per-request metrics compared, with the direction that is better (+1 higher, -1 lower).
PAIRED_METRICS: dict[str, int] = {
    "fulfillment": 1,
    "sim_saves": 1,
    "sim_save_rate": 1,
    "sim_skip_rate": -1,
    "sim_satisfaction": 1,
    "grounded": 1,
    "format_valid": 1,
}


@dataclass(frozen=True)
class PairedDelta:
    """Mean of ``rows - baseline`` over the requests both scored, with its standard error."""

    metric: str
    n: int
    mean: float | None  # None when no request was scored by both
    stderr: float | None  # None when fewer than two requests were
    better: int  # requests where the model beats the baseline (in the metric's direction)
    worse: int

    def describe(self) -> str:
        """``+0.010 ± 0.009 (3 better, 1 worse of 48)``; ``–`` when nothing was paired."""
        if self.mean is None:
            return "–"
        se = "" if self.stderr is None else f" ± {self.stderr:.3f}"
        return f"{self.mean:+.3f}{se} ({self.better} better, {self.worse} worse of {self.n})"


def _value(row: Mapping[str, Any], metric: str) -> float | None:
    value = row.get(metric)
    if value is None:
        return None
    number = float(value)
    return None if math.isnan(number) else number


def paired_delta(
    baseline: Sequence[Mapping[str, Any]], rows: Sequence[Mapping[str, Any]], metric: str, higher: int = 1
) -> PairedDelta:
    """Per-request differences ``rows - baseline`` of ``metric``, matched by ``prompt_id``.

    Args:
        baseline: The baseline model's scored rows.
        rows: The other model's scored rows.
        metric: A per-row metric name.
        higher: +1 when a higher value is better, -1 when lower is.

    Raises:
        ValueError: a row has no ``prompt_id``, or one model scored a prompt twice.
    """
    before = _by_prompt(baseline)
    diffs = []
    for pid, row in _by_prompt(rows).items():
        if pid not in before:
            continue
        a, b = _value(before[pid], metric), _value(row, metric)
        if a is not None and b is not None:
            diffs.append(b - a)
    n = len(diffs)
    if n == 0:
        return PairedDelta(metric, 0, None, None, 0, 0)
    mean = sum(diffs) / n
    stderr = math.sqrt(sum((d - mean) ** 2 for d in diffs) / (n - 1) / n) if n > 1 else None
    better = sum(d * higher > 0 for d in diffs)
    worse = sum(d * higher < 0 for d in diffs)
    return PairedDelta(metric, n, mean, stderr, better, worse)


def _by_prompt(rows: Sequence[Mapping[str, Any]]) -> dict[str, Mapping[str, Any]]:
    index: dict[str, Mapping[str, Any]] = {}
    for row in rows:
        pid = row.get("prompt_id")
        if pid is None:
            raise ValueError(f"scored row without a prompt_id (request {row.get('request')!r})")
        if pid in index:
            raise ValueError(f"prompt_id {pid!r} is scored twice")
        index[str(pid)] = row
    return index


def successive_deltas(
    results: Mapping[str, EvalResult],
    metrics: Mapping[str, int] = PAIRED_METRICS,
    references: Mapping[str, EvalResult] | None = None,
) -> dict[str, list[PairedDelta]]:
    """Each model against the one before it (``base → sft``, ``sft → dpo``), keyed ``"sft − base"``; then
    the last model against each reference playlist (``"dpo − retrieval"``, evaluation/baselines.py)."""
    names = list(results)
    steps = [(results[a], results[b], f"{b} − {a}") for a, b in itertools.pairwise(names)]
    if names:
        last = names[-1]
        steps += [(ref, results[last], f"{last} − {name}") for name, ref in (references or {}).items()]
    return {
        key: [paired_delta(before.per_row, after.per_row, m, higher) for m, higher in metrics.items()]
        for before, after, key in steps
    }


def keyed(row_sets: Iterable[Sequence[Mapping[str, Any]]]) -> bool:
    """Whether every scored row of every set names its ``prompt_id`` (rows pair up only by it)."""
    return all(row.get("prompt_id") for rows in row_sets for row in rows)


def pairable(results: Mapping[str, EvalResult], references: Mapping[str, EvalResult] | None = None) -> bool:
    """Whether there are two result sets or more (models and references) and every scored row names
    its ``prompt_id``."""
    sets = [*results.values(), *(references or {}).values()]
    return len(results) >= 1 and len(sets) > 1 and keyed(r.per_row for r in sets)


def paired_table(
    results: Mapping[str, EvalResult], references: Mapping[str, EvalResult] | None = None
) -> str:
    """Markdown table of :func:`successive_deltas`: one row per metric, one column per step; "" when
    the results are not :func:`pairable`."""
    if not pairable(results, references):
        return ""
    deltas = successive_deltas(results, references=references)
    lines = ["| metric | " + " | ".join(deltas) + " |", "|---|" + "---|" * len(deltas)]
    for i, metric in enumerate(PAIRED_METRICS):
        lines.append(f"| {metric} | " + " | ".join(d[i].describe() for d in deltas.values()) + " |")
    return "\n".join(lines)

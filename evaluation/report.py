"""Eval report pieces: a Markdown metrics table, sample playlists side by side, and a bar chart.

Example::

    >>> print(comparison_table({"base": base_result, "dpo": dpo_result}))
    | metric | base | dpo |
    |---|---|---|
    | format_valid | 0.412 | 0.953 |
    ...
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from evaluation.score import EvalResult

# The headline metrics, in the order a reviewer reads them; the table lists the rest after these.
MAIN_METRICS = ("format_valid", "grounded", "fully_grounded", "in_candidates", "fulfillment")


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", "<br>")


def _number(name: str, value: float | None) -> str:
    if value is None:
        return "–"
    return f"{value:.0f}" if name.startswith("n_") else f"{value:.3f}"


def comparison_table(results: Mapping[str, EvalResult]) -> str:
    """Markdown table of every metric (rows) for every model (columns); a missing metric shows as –."""
    names = {name for result in results.values() for name in result.metrics}
    ordered = [m for m in MAIN_METRICS if m in names] + sorted(names - set(MAIN_METRICS))
    lines = ["| metric | " + " | ".join(results) + " |", "|---|" + "---|" * len(results)]
    for name in ordered:
        values = [_number(name, r.metrics.get(name)) for r in results.values()]
        lines.append(f"| {name} | " + " | ".join(values) + " |")
    return "\n".join(lines)


def _playlist(row: Mapping[str, Any]) -> str:
    lines, flags = list(row["lines"]), list(row["grounded_lines"])
    if not lines:
        return "(no playlist) " + str(row["completion"])[:80]
    # Ungrounded lines are marked so a reader sees hallucinations at a glance.
    return "<br>".join(line if ok else f"{line} ✗" for line, ok in zip(lines, flags, strict=True))


def samples_table(results: Mapping[str, EvalResult], n: int = 5) -> str:
    """Markdown table of the first ``n`` requests with each model's playlist side by side.

    Rows are matched by position, so every result must score the same eval rows in the same order.
    Ungrounded lines end with ✗.

    Raises:
        ValueError: the results hold different numbers of rows.
    """
    sizes = {len(r.per_row) for r in results.values()}
    if len(sizes) > 1:
        raise ValueError(f"results score different numbers of rows: {sorted(sizes)}")
    first = next(iter(results.values())).per_row if results else []
    lines = ["| request | " + " | ".join(results) + " |", "|---|" + "---|" * len(results)]
    for i in range(min(n, len(first))):
        cells = [_cell(_playlist(r.per_row[i])) for r in results.values()]
        lines.append(f"| {_cell(str(first[i]['request']))} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def plot_metrics(results: Mapping[str, EvalResult], path: str | Path) -> Path:
    """Save a grouped bar chart (PNG) of the main metrics, one bar per model; returns the path."""
    names = [m for m in MAIN_METRICS if any(m in r.metrics for r in results.values())]
    # A bare Figure with the Agg canvas: no pyplot global state, no display needed.
    fig = Figure(figsize=(1.6 * max(len(names), 1) + 2, 4))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    width = 0.8 / max(len(results), 1)
    for j, (model, result) in enumerate(results.items()):
        xs = [i + j * width for i in range(len(names))]
        ax.bar(xs, [result.metrics.get(m, 0.0) for m in names], width=width, label=model)
    ax.set_xticks([i + width * (len(results) - 1) / 2 for i in range(len(names))], names)
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("score")
    ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0))  # outside the bars
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png")
    return path

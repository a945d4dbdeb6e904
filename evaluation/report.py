"""Eval report pieces: Markdown tables, PNG plots and one self-contained HTML page with samples side by side.

Example::

    >>> print(comparison_table({"base": base_result, "dpo": dpo_result}))
    | metric | base | dpo |
    |---|---|---|
    | format_valid | 0.412 | 0.953 |
    ...
"""

from __future__ import annotations

import base64
from collections.abc import Mapping, Sequence
from html import escape
from pathlib import Path
from typing import Any

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from evaluation.paired import PAIRED_METRICS, pairable, successive_deltas
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


PAIRED_NOTE = (
    "Each model against the one before it on the same requests, and the last model against each "
    "reference playlist (retrieval order, the learned reranker, the oracle): mean per-request "
    "difference ± its standard error, and on how many requests it is better or worse. A gap within "
    "about two standard errors is not resolved by this eval set."
)


def _playlist(row: Mapping[str, Any]) -> str:
    lines, flags = list(row["lines"]), list(row["grounded_lines"])
    if not lines:
        return "(no playlist) " + str(row["completion"])[:80]
    # Ungrounded lines are marked so a reader sees hallucinations at a glance.
    return "<br>".join(line if ok else f"{line} ✗" for line, ok in zip(lines, flags, strict=True))


def sample_columns(
    results: Mapping[str, EvalResult], references: Mapping[str, EvalResult] | None = None
) -> dict[str, EvalResult]:
    """The models, then the references that answer every request the models do (samples pair by position)."""
    n = {len(r.per_row) for r in results.values()}
    return {**results, **{k: r for k, r in (references or {}).items() if {len(r.per_row)} == n}}


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


CATEGORY = "fulfillment/category/"


def _save(fig: Figure, path: str | Path) -> Path:
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png")
    return path


def plot_categories(results: Mapping[str, EvalResult], path: str | Path) -> Path | None:
    """Save fulfilment by request category, one bar per model (PNG); None when no row had a category."""
    cats = sorted(
        {m.removeprefix(CATEGORY) for r in results.values() for m in r.metrics if m.startswith(CATEGORY)}
    )
    if not cats:
        return None
    fig = Figure(figsize=(1.2 * len(cats) + 2, 4))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    width = 0.8 / max(len(results), 1)
    for j, (model, result) in enumerate(results.items()):
        xs = [i + j * width for i in range(len(cats))]
        ax.bar(xs, [result.metrics.get(CATEGORY + c, 0.0) for c in cats], width=width, label=model)
    ax.set_xticks(
        [i + width * (len(results) - 1) / 2 for i in range(len(cats))], cats, rotation=30, ha="right"
    )
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("fulfillment")
    ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0))
    return _save(fig, path)


def plot_curves(
    curves: Mapping[str, Sequence[tuple[int, float]]], path: str | Path, ylabel: str
) -> Path | None:
    """Save one line per named series of (step, value) points (training losses, reward margins); None if empty."""
    curves = {name: points for name, points in curves.items() if points}
    if not curves:
        return None
    fig = Figure(figsize=(7, 4))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    for name, points in curves.items():
        steps, values = zip(*sorted(points), strict=True)
        ax.plot(steps, values, marker="o", markersize=3, label=name)
    ax.set_xlabel("step")
    ax.set_ylabel(ylabel)
    ax.legend()
    return _save(fig, path)


def _image(path: Path) -> str:
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return f'<figure><img alt="{escape(path.stem)}" src="data:image/png;base64,{data}"></figure>'


_CSS = """
body { font-family: system-ui, sans-serif; margin: 2em; color: #222; }
table { border-collapse: collapse; margin-bottom: 2em; }
th, td { border: 1px solid #ccc; padding: 4px 8px; vertical-align: top; text-align: left; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
.bad { color: #b3261e; } img { max-width: 100%; }
"""


def html_report(
    title: str,
    results: Mapping[str, EvalResult],
    images: Sequence[Path],
    n_samples: int = 5,
    references: Mapping[str, EvalResult] | None = None,
) -> str:
    """One HTML page (inline CSS, PNGs inlined as data URIs, no scripts): metrics, plots, samples side by side.

    ``references`` (evaluation/baselines.py) get a metrics column each, the last model is paired
    against each, and their playlists join the samples when they answer every request.

    Raises:
        ValueError: the results hold different numbers of rows (see :func:`samples_table`).
    """
    sizes = {len(r.per_row) for r in results.values()}
    if len(sizes) > 1:
        raise ValueError(f"results score different numbers of rows: {sorted(sizes)}")
    references = references or {}
    columns = {**results, **references}
    names = {name for result in columns.values() for name in result.metrics}
    ordered = [m for m in MAIN_METRICS if m in names] + sorted(names - set(MAIN_METRICS))
    head = "".join(f"<th>{escape(m)}</th>" for m in columns)
    metrics = "".join(
        f"<tr><td>{escape(n)}</td>"
        + "".join(f'<td class="num">{_number(n, r.metrics.get(n))}</td>' for r in columns.values())
        + "</tr>"
        for n in ordered
    )
    paired = ""
    if pairable(results, references):
        deltas = successive_deltas(results, references=references)
        paired = (
            f"<h2>Paired differences</h2><p>{escape(PAIRED_NOTE)}</p>"
            f"<table><tr><th>metric</th>{''.join(f'<th>{escape(k)}</th>' for k in deltas)}</tr>"
            + "".join(
                f"<tr><td>{escape(m)}</td>"
                + "".join(f'<td class="num">{escape(d[i].describe())}</td>' for d in deltas.values())
                + "</tr>"
                for i, m in enumerate(PAIRED_METRICS)
            )
            + "</table>"
        )
    shown = sample_columns(results, references)
    sample_head = "".join(f"<th>{escape(m)}</th>" for m in shown)
    first = next(iter(shown.values())).per_row if shown else []
    samples = []
    for i in range(min(n_samples, len(first))):
        cells = []
        for r in shown.values():
            row = r.per_row[i]
            lines, flags = list(row["lines"]), list(row["grounded_lines"])
            if not lines:
                cells.append(f"<td>(no playlist) {escape(str(row['completion'])[:80])}</td>")
                continue
            cells.append("<td>" + "<br>".join(
                escape(line) if ok else f'<span class="bad">{escape(line)} ✗</span>'
                for line, ok in zip(lines, flags, strict=True)
            ) + "</td>")  # fmt: skip
        samples.append(f"<tr><td>{escape(str(first[i]['request']))}</td>{''.join(cells)}</tr>")
    return (
        f'<!doctype html><html><head><meta charset="utf-8"><title>{escape(title)}</title>'
        f"<style>{_CSS}</style></head><body><h1>{escape(title)}</h1>"
        f"<h2>Metrics</h2><table><tr><th>metric</th>{head}</tr>{metrics}</table>{paired}"
        f"<h2>Plots</h2>{''.join(_image(p) for p in images)}"
        f"<h2>Sample playlists</h2><p>The same requests for every model; lines in red (✗) are not grounded.</p>"
        f"<table><tr><th>request</th>{sample_head}</tr>{''.join(samples)}</table></body></html>"
    )

"""`encore compare` rendered twice: rich tables for the terminal and one self-contained HTML page.

Both show the same five parts, built by `encore.registry.compare`: the params that differ, the final eval metrics
with deltas against the first reference (better in green, worse in red, by each metric's direction),
the per-request differences against it on the requests both answered (mean ± standard error, requests
better and worse: is a delta larger than its noise?), fulfilment per request category, and the sample
playlists for the same requests side by side.
"""

from __future__ import annotations

from html import escape

from rich.table import Table

from encore.registry.compare import (
    CATEGORY,
    FINAL,
    MetricRow,
    RunView,
    category_rows,
    metric_rows,
    paired_rows,
    param_diff,
    playlist_lines,
    sample_rows,
)

_STYLE = {"better": "green", "worse": "red"}


def _value(value: float | None) -> str:
    return "–" if value is None else f"{value:.3f}"


def _delta(row: MetricRow, i: int) -> str:
    delta = row.deltas[i]
    if i == 0 or delta is None:
        return ""
    return f"{delta:+.3f} {row.verdicts[i]}"


def _metric_table(title: str, views: list[RunView], rows: list[MetricRow], strip: str = FINAL) -> Table:
    table = Table(title=title)
    table.add_column("metric")
    for i, view in enumerate(views):
        table.add_column(view.label + (" (baseline)" if i == 0 else ""), justify="right")
    for row in rows:
        cells = []
        for i, value in enumerate(row.values):
            text = _value(value) + (f" ({_delta(row, i)})" if _delta(row, i) else "")
            style = _STYLE.get(row.verdicts[i])
            cells.append(f"[{style}]{escape_rich(text)}[/]" if style else escape_rich(text))
        table.add_row(escape_rich(row.name.removeprefix(strip)), *cells)
    return table


def escape_rich(text: str) -> str:
    """Text with rich's markup brackets escaped."""
    return text.replace("[", "\\[")


def rich_tables(views: list[RunView]) -> list[Table]:
    """Params that differ, metrics, per-category fulfilment and samples, as rich tables."""
    params = Table(title="params that differ")
    params.add_column("param")
    for view in views:
        params.add_column(view.label)
    for key, values in param_diff(views):
        params.add_row(escape_rich(key), *[escape_rich("–" if v is None else v) for v in values])
    if not param_diff(views):
        params.add_row("(none: the same recipe)", *["" for _ in views])
    tables = [
        params,
        _metric_table("final eval metrics (delta against the baseline)", views, metric_rows(views)),
    ]
    paired = paired_rows(views)
    if paired:
        table = Table(title="per-request differences against the baseline (mean ± standard error)")
        table.add_column("metric")
        for view in views[1:]:
            table.add_column(view.label, justify="right")
        for metric, deltas in paired:
            table.add_row(metric, *[escape_rich(d.describe()) for d in deltas[1:] if d is not None])
        tables.append(table)
    tables.append(
        _metric_table("fulfillment by request category", views, category_rows(views), FINAL + CATEGORY)
    )
    samples = Table(title="sample playlists (✗ = not grounded in the catalog)", show_lines=True)
    samples.add_column("request")
    for view in views:
        samples.add_column(view.label)
    for request, rows in sample_rows(views):
        samples.add_row(escape_rich(request), *[escape_rich("\n".join(playlist_lines(r))) for r in rows])
    tables.append(samples)
    return tables


_CSS = """
body { font-family: system-ui, sans-serif; margin: 2em; color: #222; }
table { border-collapse: collapse; margin-bottom: 2em; }
th, td { border: 1px solid #ccc; padding: 4px 8px; vertical-align: top; text-align: left; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
.better { color: #137333; font-weight: 600; } .worse { color: #b3261e; font-weight: 600; }
.bad { color: #b3261e; }
"""


def _html_metrics(title: str, views: list[RunView], rows: list[MetricRow], strip: str = FINAL) -> str:
    head = "".join(f"<th>{escape(v.label)}</th>" for v in views)
    body = []
    for row in rows:
        cells = []
        for i, value in enumerate(row.values):
            delta = _delta(row, i)
            note = f' <span class="{row.verdicts[i]}">({escape(delta)})</span>' if delta else ""
            cells.append(f'<td class="num">{_value(value)}{note}</td>')
        body.append(f"<tr><td>{escape(row.name.removeprefix(strip))}</td>{''.join(cells)}</tr>")
    if not body:
        body.append(f'<tr><td colspan="{len(views) + 1}">none logged</td></tr>')
    return f"<h2>{escape(title)}</h2><table><tr><th>metric</th>{head}</tr>{''.join(body)}</table>"


def _html_playlist(lines: list[str]) -> str:
    return "<br>".join(
        f'<span class="bad">{escape(line)}</span>' if line.endswith("✗") else escape(line) for line in lines
    )


def html_page(views: list[RunView]) -> str:
    """One HTML page (inline CSS, no scripts, no external files) with the four parts of the comparison."""
    labels = ", ".join(f"{escape(v.label)} (run {escape(v.run_id)})" for v in views)
    params = "".join(
        f"<tr><td>{escape(k)}</td>"
        + "".join(f"<td>{escape('–' if v is None else v)}</td>" for v in values)
        + "</tr>"
        for k, values in param_diff(views)
    )
    head = "".join(f"<th>{escape(v.label)}</th>" for v in views)
    paired = "".join(
        f"<tr><td>{escape(metric)}</td>"
        + "".join(f'<td class="num">{escape(d.describe())}</td>' for d in deltas[1:] if d is not None)
        + "</tr>"
        for metric, deltas in paired_rows(views)
    )
    paired_head = "".join(f"<th>{escape(v.label)}</th>" for v in views[1:])
    samples = "".join(
        f"<tr><td>{escape(request)}</td>"
        + "".join(f"<td>{_html_playlist(playlist_lines(r))}</td>" for r in rows)
        + "</tr>"
        for request, rows in sample_rows(views)
    )
    return (
        f'<!doctype html><html><head><meta charset="utf-8"><title>encore compare</title><style>{_CSS}</style>'
        f"</head><body><h1>encore compare</h1><p>Baseline: the first of {labels}.</p>"
        f"<h2>Params that differ</h2><table><tr><th>param</th>{head}</tr>{params}</table>"
        + _html_metrics("Final eval metrics (delta against the baseline)", views, metric_rows(views))
        + (
            "<h2>Per-request differences against the baseline</h2><p>Mean difference ± its standard "
            "error over the requests both answered, and on how many the run is better or worse.</p>"
            f"<table><tr><th>metric</th>{paired_head}</tr>{paired}</table>"
            if paired
            else ""
        )
        + _html_metrics("Fulfillment by request category", views, category_rows(views), FINAL + CATEGORY)
        + f"<h2>Sample playlists</h2><p>Lines in red are not grounded in the catalog.</p>"
        f"<table><tr><th>request</th>{head}</tr>{samples}</table></body></html>"
    )

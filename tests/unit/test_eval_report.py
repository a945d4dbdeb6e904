"""Report pieces: metrics table, side-by-side samples, bar chart."""

from __future__ import annotations

import pytest

from evaluation.report import comparison_table, plot_metrics, samples_table
from evaluation.score import EvalResult


def _row(request: str, lines: list[str], grounded: list[bool], completion: str = "") -> dict:
    return {"request": request, "lines": lines, "grounded_lines": grounded, "completion": completion}


BASE = EvalResult(
    metrics={"n_requests": 2.0, "grounded": 0.25, "format_valid": 0.5, "fulfillment/genre": 0.1},
    per_row=[
        _row("mellow | folk", ["Nick Drake - Pink Moon", "Nobody - Nothing"], [True, False]),
        _row("dance", [], [], completion="I cannot help\nsorry"),
    ],
)
DPO = EvalResult(
    metrics={"n_requests": 2.0, "grounded": 1.0, "format_valid": 1.0, "fulfillment": 0.8},
    per_row=[
        _row("mellow | folk", ["Low - Sunflower"], [True]),
        _row("dance", ["Daft Punk - One More Time"], [True]),
    ],
)


def test_comparison_table():
    assert comparison_table({"base": BASE, "dpo": DPO}) == "\n".join(
        [
            "| metric | base | dpo |",
            "|---|---|---|",
            "| format_valid | 0.500 | 1.000 |",
            "| grounded | 0.250 | 1.000 |",
            "| fulfillment | – | 0.800 |",
            "| fulfillment/genre | 0.100 | – |",
            "| n_requests | 2 | 2 |",
        ]
    )


def test_samples_table():
    assert samples_table({"base": BASE, "dpo": DPO}, n=5) == "\n".join(
        [
            "| request | base | dpo |",
            "|---|---|---|",
            "| mellow \\| folk | Nick Drake - Pink Moon<br>Nobody - Nothing ✗ | Low - Sunflower |",
            "| dance | (no playlist) I cannot help<br>sorry | Daft Punk - One More Time |",
        ]
    )
    assert samples_table({"base": BASE, "dpo": DPO}, n=1).count("\n") == 2


def test_samples_table_needs_the_same_rows():
    with pytest.raises(ValueError, match="different numbers of rows"):
        samples_table({"base": BASE, "short": EvalResult(per_row=BASE.per_row[:1])})


def test_plot_metrics_writes_png(tmp_path):
    path = plot_metrics({"base": BASE, "dpo": DPO}, tmp_path / "plots" / "metrics.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert path.stat().st_size > 1000

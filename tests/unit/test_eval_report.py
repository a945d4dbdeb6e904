"""Report pieces: metrics table, side-by-side samples, bar chart."""

from __future__ import annotations

import pytest

from evaluation.report import (
    comparison_table,
    html_report,
    plot_categories,
    plot_curves,
    plot_metrics,
    samples_table,
)
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


def test_plot_categories_and_curves(tmp_path):
    dpo = EvalResult(metrics={"fulfillment/category/genre": 0.7, "fulfillment/category/refine": 0.4})
    path = plot_categories({"base": BASE, "dpo": dpo}, tmp_path / "categories.png")
    assert path is not None and path.read_bytes().startswith(b"\x89PNG")
    assert plot_categories({"base": BASE}, tmp_path / "none.png") is None  # no row had a category
    curves = plot_curves({"sft": [(5, 3.0), (10, 2.0)], "dpo": []}, tmp_path / "loss.png", "loss")
    assert curves is not None and curves.read_bytes().startswith(b"\x89PNG")
    assert plot_curves({"dpo": []}, tmp_path / "empty.png", "loss") is None


def test_html_report_is_self_contained(tmp_path):
    image = plot_metrics({"base": BASE, "dpo": DPO}, tmp_path / "metrics.png")
    page = html_report("Evaluation: smoke <1>", {"base": BASE, "dpo": DPO}, [image])
    assert page.startswith("<!doctype html>") and "<script" not in page and "http" not in page
    assert "Evaluation: smoke &lt;1&gt;" in page
    assert 'src="data:image/png;base64,' in page
    assert '<span class="bad">Nobody - Nothing ✗</span>' in page
    assert "(no playlist) I cannot help" in page
    assert '<td class="num">0.800</td>' in page  # dpo's fulfillment
    assert "Paired differences" not in page  # these rows name no prompt_id: nothing to pair them by


def test_html_report_pairs_rows_by_prompt_id():
    def scored(values: list[float]) -> EvalResult:
        rows = [
            {**r, "prompt_id": f"p{i}", "fulfillment": v}
            for i, (r, v) in enumerate(zip(BASE.per_row, values, strict=True))
        ]
        return EvalResult({}, rows)

    page = html_report("e", {"sft": scored([0.5, 0.5]), "dpo": scored([0.75, 0.25])}, [])
    assert "<th>dpo − sft</th>" in page
    assert '<td class="num">+0.000 ± 0.250 (1 better, 1 worse of 2)</td>' in page

"""Paired per-request differences between models (evaluation/paired.py)."""

from __future__ import annotations

import math

import pytest

from evaluation.paired import PAIRED_METRICS, paired_delta, paired_table, successive_deltas
from evaluation.score import EvalResult


def _rows(values: list[float | None], metric: str = "fulfillment") -> list[dict]:
    return [{"prompt_id": f"p{i}", "request": f"r{i}", metric: v} for i, v in enumerate(values)]


def test_docstring_example() -> None:
    d = paired_delta(_rows([0.8, 0.9, 0.7]), _rows([0.9, 0.9, 0.8]), "fulfillment")
    assert (d.n, d.better, d.worse) == (3, 2, 0)
    assert d.mean == pytest.approx(0.2 / 3)
    # differences 0.1, 0, 0.1: sample variance 1/300, standard error sqrt(1/300 / 3) = 1/30
    assert d.stderr == pytest.approx(1 / 30)
    assert d.describe() == "+0.067 ± 0.033 (2 better, 0 worse of 3)"


def test_matched_by_prompt_not_position() -> None:
    baseline = _rows([1.0, 2.0])
    reordered = list(reversed(_rows([1.5, 2.0])))  # p1 first, p0 second
    d = paired_delta(baseline, reordered, "fulfillment")
    assert (d.n, d.mean, d.better, d.worse) == (2, 0.25, 1, 0)


def test_unscored_and_unmatched_requests_are_left_out() -> None:
    baseline = _rows([1.0, None, 1.0, math.nan])
    rows = [*_rows([2.0, 1.0, None, 1.0]), {"prompt_id": "extra", "fulfillment": 9.0}]
    d = paired_delta(baseline, rows, "fulfillment")
    assert (d.n, d.mean, d.stderr) == (1, 1.0, None)
    assert d.describe() == "+1.000 (1 better, 0 worse of 1)"
    empty = paired_delta(_rows([None]), _rows([1.0]), "fulfillment")
    assert (empty.n, empty.mean, empty.describe()) == (0, None, "–")


def test_lower_is_better_counts_the_other_way() -> None:
    d = paired_delta(
        _rows([0.3, 0.2], "sim_skip_rate"), _rows([0.1, 0.4], "sim_skip_rate"), "sim_skip_rate", -1
    )
    assert (d.better, d.worse) == (1, 1)
    assert d.mean == pytest.approx(0.0)


@pytest.mark.parametrize("rows", [[{"fulfillment": 1.0}], _rows([1.0]) + _rows([2.0])])
def test_rows_without_or_with_repeated_prompt_ids_are_errors(rows: list[dict]) -> None:
    with pytest.raises(ValueError, match="prompt_id"):
        paired_delta(rows, _rows([1.0]), "fulfillment")


def test_successive_deltas_and_table() -> None:
    def result(f: list[float], saves: list[float]) -> EvalResult:
        rows = [{**r, "sim_saves": s} for r, s in zip(_rows(f), saves, strict=True)]
        return EvalResult({}, rows)

    results = {
        "base": result([0.0, 0.0], [0.0, 0.0]),
        "sft": result([0.8, 0.6], [2.0, 1.0]),
        "dpo": result([0.8, 0.7], [2.0, 0.5]),
    }
    deltas = successive_deltas(results)
    assert list(deltas) == ["sft − base", "dpo − sft"]
    by_metric = {d.metric: d for d in deltas["dpo − sft"]}
    assert (by_metric["fulfillment"].better, by_metric["fulfillment"].worse) == (1, 0)
    assert (by_metric["sim_saves"].mean, by_metric["sim_saves"].worse) == (-0.25, 1)
    assert by_metric["grounded"].n == 0  # not in these rows
    table = paired_table(results).splitlines()
    assert table[0] == "| metric | sft − base | dpo − sft |"
    assert len(table) == 2 + len(PAIRED_METRICS)
    assert table[2].startswith("| fulfillment | +0.700 ± 0.100 (2 better, 0 worse of 2) | +0.050 ± 0.050")
    assert paired_table({"sft": results["sft"]}) == ""


def test_the_last_model_is_paired_against_each_reference() -> None:
    results = {"sft": EvalResult({}, _rows([0.8, 0.6])), "dpo": EvalResult({}, _rows([0.9, 0.6]))}
    references = {"retrieval": EvalResult({}, _rows([0.8, 0.7])), "oracle": EvalResult({}, _rows([1.0, 1.0]))}
    deltas = successive_deltas(results, references=references)
    assert list(deltas) == ["dpo − sft", "dpo − retrieval", "dpo − oracle"]
    assert deltas["dpo − oracle"][0].mean == pytest.approx(-0.25)
    # One model and a reference are enough to pair.
    assert paired_table({"sft": results["sft"]}, references).splitlines()[0] == (
        "| metric | sft − retrieval | sft − oracle |"
    )

"""`encore compare`: metric directions, verdicts and the diff of runs on a real SQLite MLflow store."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from mlflow import MlflowClient

from encore.registry.compare import (
    RunView,
    category_rows,
    collect,
    direction,
    metric_curves,
    metric_rows,
    paired_rows,
    param_diff,
    pipeline_runs,
    playlist_lines,
    sample_rows,
    verdict,
)
from encore.registry.compare_view import html_page, rich_tables


@pytest.mark.parametrize(
    ("metric", "expected"),
    [
        ("eval/final/fulfillment", 1),
        ("eval/dpo/fulfillment/category/refine", 1),
        ("eval/sft/fulfillment/avoid_artists", 1),
        ("eval/final/grounded", 1),
        ("eval/final/hit@10", 1),
        ("eval/final/mrr@5", 1),
        ("eval/final/hallucination_rate", -1),
        ("eval/final/max_artist_share", -1),
        ("eval/final/sim_skip_rate", -1),
        ("train/loss", -1),
        ("eval/final/n_requests", 0),
        ("eval/final/mean_length", 0),
        ("eval/final/mean_popularity", 0),
        ("train/learning_rate", 0),
    ],
)
def test_direction(metric: str, expected: int):
    assert direction(metric) == expected


def test_verdict_follows_the_direction():
    assert verdict("eval/final/grounded", 0.9, 0.95) == "better"
    assert verdict("eval/final/hallucination_rate", 0.1, 0.2) == "worse"
    assert verdict("eval/final/hallucination_rate", 0.2, 0.1) == "better"
    assert verdict("eval/final/grounded", 0.9, 0.9) == "same"
    assert verdict("eval/final/mean_length", 5.0, 7.0) == "changed"
    assert verdict("eval/final/grounded", None, 0.9) == "n/a"


SAMPLES = {
    "a": [
        {"prompt_id": "p1", "request": "calm jazz", "lines": ["c1 | A - x", "c0 | Nobody - y"],
         "grounded_lines": [True, False], "completion": "…", "fulfillment": 0.5, "sim_saves": 1.0},
        {"prompt_id": "p2", "request": "loud rock", "lines": [], "grounded_lines": [], "completion": "blah",
         "fulfillment": 0.2, "sim_saves": 0.0},
    ],
    "b": [
        {"prompt_id": "p2", "request": "loud rock", "lines": ["c2 | B - z"], "grounded_lines": [True],
         "completion": "…", "fulfillment": 0.6, "sim_saves": 0.0},
    ],
}  # fmt: skip


def log_pipeline(client: MlflowClient, experiment: str, params: dict, metrics: dict, samples: list) -> tuple:
    """A pipeline run with an eval child run holding metrics and a per-row report, like the pipeline logs."""
    parent = client.create_run(experiment, tags={"encore.stage": "pipeline"})
    for key, value in params.items():
        client.log_param(parent.info.run_id, key, value)
    client.log_metric(parent.info.run_id, "pipeline/seconds", 100.0)
    child = client.create_run(
        experiment, tags={"encore.stage": "eval", "mlflow.parentRunId": parent.info.run_id}
    )
    for key, value in metrics.items():
        client.log_metric(child.info.run_id, key, value)
    client.log_text(child.info.run_id, json.dumps(samples), "report/per_row_dpo.json")
    return parent.info.run_id, child.info.run_id


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> dict:
    tmp = tmp_path_factory.mktemp("compare")
    uri = f"sqlite:///{tmp / 'mlflow.db'}"
    client = MlflowClient(uri, uri)
    experiment = client.create_experiment("encore-smoke", artifact_location=str(tmp / "artifacts"))
    base = {"preference": "dpo", "dpo.enabled": "True", "sft.enabled": "True", "seed": "0"}
    a = log_pipeline(
        client,
        experiment,
        base | {"dpo.args.beta": "0.1", "sft.args.max_steps": "16"},
        {"eval/final/fulfillment": 0.50, "eval/final/hallucination_rate": 0.10, "eval/final/n_requests": 16,
         "eval/final/fulfillment/category/refine": 0.4, "eval/dpo/fulfillment": 0.50},
        SAMPLES["a"],
    )  # fmt: skip
    b = log_pipeline(
        client,
        experiment,
        base | {"dpo.args.beta": "0.2", "sft.args.max_steps": "16", "dpo.args.loss_type": "ipo"},
        {"eval/final/fulfillment": 0.60, "eval/final/hallucination_rate": 0.20, "eval/final/n_requests": 16,
         "eval/final/fulfillment/category/new": 0.7, "eval/dpo/fulfillment": 0.60},
        SAMPLES["b"],
    )  # fmt: skip
    client.create_registered_model("gen")
    version = client.create_model_version(
        "gen", f"runs:/{b[1]}/model", b[1], tags={"metric.grounded": "0.95"}
    )
    client.set_registered_model_alias("gen", "champion", version.version)
    return {"client": client, "a": a, "b": b}


def test_a_run_a_child_run_and_a_model_uri_all_stand_for_their_pipeline(store: dict):
    client, (a_parent, a_eval), (b_parent, _) = store["client"], store["a"], store["b"]
    assert collect(client, a_parent).run_id == a_parent
    assert collect(client, f"runs:/{a_eval}").run_id == a_parent
    view = collect(client, "models:/gen@champion")
    assert view.run_id == b_parent and view.label == "gen@champion (v1)"
    assert view.metrics["eval/final/fulfillment"] == 0.60
    assert view.metrics["pipeline/seconds"] == 100.0
    assert view.metrics["eval/final/grounded"] == 0.95  # from the version's metric tag
    assert collect(client, "models:/gen/1").run_id == b_parent


def test_params_that_differ_include_one_run_lacks(store: dict):
    views = [collect(store["client"], store["a"][0]), collect(store["client"], store["b"][0])]
    assert param_diff(views) == [("dpo.args.beta", ["0.1", "0.2"]), ("dpo.args.loss_type", [None, "ipo"])]


def test_metric_deltas_are_marked_by_direction(store: dict):
    views = [collect(store["client"], store["a"][0]), collect(store["client"], store["b"][0])]
    rows = {r.name: r for r in metric_rows(views)}
    assert set(rows) == {"eval/final/fulfillment", "eval/final/hallucination_rate", "eval/final/n_requests"}
    assert rows["eval/final/fulfillment"].deltas[1] == pytest.approx(0.10)
    assert rows["eval/final/fulfillment"].verdicts == ["", "better"]
    assert rows["eval/final/hallucination_rate"].verdicts == ["", "worse"]
    assert rows["eval/final/n_requests"].verdicts == ["", "same"]
    categories = {r.name.rsplit("/", 1)[-1]: r for r in category_rows(views)}
    assert categories["refine"].values == [0.4, None] and categories["refine"].verdicts == ["", "n/a"]
    assert categories["new"].values == [None, 0.7]


def test_samples_are_matched_by_prompt_id(store: dict):
    views = [collect(store["client"], store["a"][0]), collect(store["client"], store["b"][0])]
    rows = sample_rows(views)
    assert [request for request, _ in rows] == ["calm jazz", "loud rock"]
    assert playlist_lines(rows[0][1][0]) == ["c1 | A - x", "c0 | Nobody - y ✗"]
    assert playlist_lines(rows[0][1][1]) == ["(not in this run's eval rows)"]
    assert playlist_lines(rows[1][1][0]) == ["(no playlist) blah"]
    assert playlist_lines(rows[1][1][1]) == ["c2 | B - z"]


def test_a_sample_is_found_beyond_the_other_runs_own_samples():
    first, second = SAMPLES["a"][1], {**SAMPLES["b"][0], "prompt_id": "p1", "request": "calm jazz"}
    a = RunView("a", "r1", rows=[first, SAMPLES["a"][0]], n_samples=1)
    b = RunView("b", "r2", rows=[second, SAMPLES["b"][0]], n_samples=1)
    assert sample_rows([a, b]) == [("loud rock", [first, SAMPLES["b"][0]])]


def test_paired_differences_match_requests_by_prompt_id(store: dict):
    views = [collect(store["client"], store["a"][0]), collect(store["client"], store["b"][0])]
    assert len(views[0].rows) == 2 and len(views[1].rows) == 1
    paired = dict(paired_rows(views))
    fulfillment, saves = paired["fulfillment"], paired["sim_saves"]
    assert fulfillment[0] is None and fulfillment[1] is not None and saves[1] is not None
    assert (fulfillment[1].n, fulfillment[1].mean, fulfillment[1].better) == (1, pytest.approx(0.4), 1)
    assert (saves[1].n, saves[1].mean, saves[1].better, saves[1].worse) == (1, 0.0, 0, 0)
    assert paired["grounded"][1] is not None and paired["grounded"][1].n == 0  # not in these rows
    no_eval = RunView("no eval", "r0")
    assert all(d[1] is not None and d[1].n == 0 for _, d in paired_rows([views[0], no_eval]))
    assert paired_rows([no_eval, views[0]]) == []  # no baseline rows: no table at all


def test_html_is_self_contained_and_shows_every_part(store: dict, tmp_path: Path):
    views = [collect(store["client"], store["a"][0]), collect(store["client"], "models:/gen@champion")]
    page = html_page(views)
    assert page.startswith("<!doctype html>") and "<script" not in page and "http" not in page
    assert "dpo.args.loss_type" in page and "ipo" in page
    assert '<span class="better">(+0.100 better)</span>' in page
    assert '<span class="worse">(+0.100 worse)</span>' in page
    assert '<span class="bad">c0 | Nobody - y ✗</span>' in page
    assert '<td class="num">+0.400 (1 better, 0 worse of 1)</td>' in page  # p2's fulfillment, a → b
    assert [t.title for t in rich_tables(views)] == [
        "params that differ",
        "final eval metrics (delta against the baseline)",
        "per-request differences against the baseline (mean ± standard error)",
        "fulfillment by request category",
        "sample playlists (✗ = not grounded in the catalog)",
    ]


def test_metric_curves_come_from_the_stage_runs_of_the_pipeline(store: dict):
    client, (parent, _) = store["client"], store["a"]
    experiment = client.get_run(parent).info.experiment_id
    sft = client.create_run(experiment, tags={"encore.stage": "sft", "mlflow.parentRunId": parent})
    for step, loss in [(5, 3.0), (10, 2.5)]:
        client.log_metric(sft.info.run_id, "train/loss", loss, step=step)
    _, runs = pipeline_runs(client, parent)
    assert metric_curves(client, runs, "train/loss") == {"sft": [(5, 3.0), (10, 2.5)]}
    assert metric_curves(client, runs, "train/rewards/margins") == {}

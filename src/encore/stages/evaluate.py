"""Eval stage: base vs SFT vs the preference policy on held-out requests (format, grounding, intent fulfilment,
diversity, popularity, simulated users) and held-out preference pairs (preference accuracy).

Metrics are `eval/<model>/<metric>`, the model named by its stage (`base`, `sft`, `dpo`, `kto`,
`orpo`, `simpo`, `grpo`); the recipe's final policy is also logged as `eval/final/<metric>`, one
name to compare runs of different methods. The reference playlists of `eval.baselines` (retrieval
order, the learned reranker, the oracle; evaluation/baselines.py) are logged the same way,
`eval/retrieval/<metric>`; the reranker is trained here on the training users' feedback
(evaluation/reranker.py), its fit logged as `reranker/<figure>` (rows, groups, held-out NDCG@10).
"""

from __future__ import annotations

import gc
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import mlflow
import pandas as pd
import torch
from mlflow.data.pandas_dataset import from_pandas
from transformers import set_seed

from data_prep.settings import RewardSettings
from encore.config import Recipe
from encore.registry.compare import metric_curves, pipeline_runs
from encore.tracking import stage_run, write_json
from encore.train.data import check_prepared_format, eval_pairs
from encore.train.lora import load_policy
from evaluation.baselines import score_baselines
from evaluation.paired import paired_table
from evaluation.report import (
    PAIRED_NOTE,
    comparison_table,
    html_report,
    plot_categories,
    plot_curves,
    plot_metrics,
    sample_columns,
    samples_table,
)
from evaluation.reranker import train_reranker
from evaluation.score import EvalResult, score_playlists
from evaluation.tasks.preference_accuracy import pair_logprobs, preference_scores, reward_margins
from playlist.generate import generate_playlists


def eval_rows(prepared: Path, max_requests: int | None) -> list[dict]:
    """Held-out requests in a stable order (by prompt id), at most `max_requests`."""
    check_prepared_format(prepared)
    frame = pd.read_parquet(prepared / "eval").sort_values("prompt_id", kind="stable")
    if max_requests is not None:
        frame = frame.head(max_requests)
    return frame.to_dict("records")


def prep_rewards(prepared: Path) -> RewardSettings:
    """The reward settings the prep job ran with (its manifest's config): the reranker's labels follow them."""
    config = json.loads((prepared / "manifest.json").read_text())["config"]
    return RewardSettings.model_validate(config.get("rewards", {}))


def adapters_for(recipe: Recipe, model: str) -> list[Path]:
    """The adapters that make `model` (a stage name, or `base`), in training order."""
    stages = [] if model == "base" else [*recipe.adapters_before(model), model]
    return [recipe.out / stage / "adapter" for stage in stages]


def policy_on_device(recipe: Recipe, adapters: list[Path]) -> tuple[Any, Any]:
    """The policy `adapters` make (`load_policy`) and its tokenizer, on the GPU when there is one."""
    model, tokenizer = load_policy(recipe.base_model, adapters, trust_remote_code=recipe.trust_remote_code)
    # Generation and pair scoring follow the model; transformers types `to` as taking a model.
    model.to("cuda" if torch.cuda.is_available() else "cpu")  # type: ignore[arg-type]
    return model, tokenizer


def greedy_playlists(
    recipe: Recipe, model: Any, tokenizer: Any, rows: Sequence[Mapping[str, Any]]
) -> list[str]:
    """The model's greedy answer to each row's `prompt`, with the recipe's eval decoding settings."""
    return generate_playlists(
        model,
        tokenizer,
        [r["prompt"] for r in rows],
        max_new_tokens=recipe.eval.max_new_tokens,
        batch_size=recipe.eval.batch_size,
    )


def main(recipe: Recipe) -> dict[str, EvalResult]:
    """Generate and score every model of `eval.models`; logs `eval/<model>/<metric>` and a report."""
    final = recipe.final_model
    prepared = recipe.out / "prepared"
    report_dir = recipe.out / "eval"
    results: dict[str, EvalResult] = {}
    with stage_run(recipe, "eval") as run:
        rows = eval_rows(prepared, recipe.eval.max_requests)
        catalog = pd.read_parquet(prepared / "validated" / "catalog")
        mlflow.log_input(
            from_pandas(pd.DataFrame(rows), source=str(prepared / "eval"), name="eval"),
            context="evaluation",
        )
        pairs = eval_pairs(prepared, recipe.eval.pair_limit)
        for name in recipe.eval_models:
            set_seed(recipe.seed)
            model, tokenizer = policy_on_device(recipe, adapters_for(recipe, name))
            completions = greedy_playlists(recipe, model, tokenizer, rows)
            results[name] = score_playlists(
                completions, rows, catalog, seed=recipe.seed, n_replays=recipe.eval.sim_replays
            )
            if name != "base" and pairs:  # the base model is its own reference: every margin is 0
                logps = pair_logprobs(model, tokenizer, pairs, batch_size=recipe.eval.batch_size)
                beta = recipe.implicit_beta(name)
                margins = reward_margins(
                    logps["policy_chosen"],
                    logps["ref_chosen"],
                    logps["policy_rejected"],
                    logps["ref_rejected"],
                    beta,
                )
                results[name].metrics.update(preference_scores(margins))
            mlflow.log_metrics({f"eval/{name}/{k}": v for k, v in results[name].metrics.items()})
            if name == final:
                mlflow.log_metrics({f"eval/final/{k}": v for k, v in results[name].metrics.items()})
            del model
            gc.collect()
        reranker = None
        if "reranker" in recipe.eval.baselines:
            rewards = prep_rewards(prepared)
            reranker, figures = train_reranker(
                prepared,
                seed=recipe.seed,
                weights=rewards.resolved_weights(),
                early_skip=rewards.early_skip,
                track_clip=rewards.track_clip,
            )
            mlflow.log_metrics({f"reranker/{k}": v for k, v in figures.items()})
        references = score_baselines(
            recipe.eval.baselines,
            rows,
            catalog,
            seed=recipe.seed,
            n_replays=recipe.eval.sim_replays,
            reranker=reranker.playlist if reranker else None,
        )
        for name, reference in references.items():
            mlflow.log_metrics({f"eval/{name}/{k}": v for k, v in reference.metrics.items()})
        columns = {**results, **references}
        report_dir.mkdir(parents=True, exist_ok=True)
        sections = [f"# Evaluation: {recipe.name}", comparison_table(columns)]
        paired = paired_table(results, references)
        if paired:
            sections += ["## Paired differences", PAIRED_NOTE, paired]
        summary = "\n\n".join([*sections, "## Samples", samples_table(sample_columns(results, references))])
        client = mlflow.MlflowClient()
        _, stage_runs = pipeline_runs(client, run.info.run_id)  # training curves from the sibling stage runs
        images = [
            plot_metrics(columns, report_dir / "metrics.png"),
            plot_categories(columns, report_dir / "categories.png"),
            plot_curves(
                metric_curves(client, stage_runs, "train/loss"), report_dir / "training_loss.png", "loss"
            ),
            plot_curves(
                metric_curves(client, stage_runs, "train/rewards/margins"),
                report_dir / "reward_margins.png",
                "reward margin (chosen − rejected)",
            ),
        ]
        plots = [p for p in images if p is not None]
        summary += "\n\n## Plots\n\n" + "\n".join(f"![{p.stem}]({p.name})" for p in plots)
        (report_dir / "report.md").write_text(summary)
        (report_dir / "report.html").write_text(
            html_report(f"Evaluation: {recipe.name}", results, plots, references=references)
        )
        write_json(report_dir / "metrics.json", {name: r.metrics for name, r in columns.items()})
        for model_name, result in columns.items():
            write_json(report_dir / f"per_row_{model_name}.json", result.per_row)
        mlflow.log_artifacts(str(report_dir), "report")
    return results

"""Eval stage: base vs SFT vs the preference policy on held-out requests (format, grounding, intent fulfilment).

Metrics are `eval/<model>/<metric>`, the model named by its stage (`base`, `sft`, `dpo`, `kto`,
`orpo`, `simpo`, `grpo`); the recipe's final policy is also logged as `eval/final/<metric>`, one
name to compare runs of different methods.
"""

from __future__ import annotations

import gc
from pathlib import Path

import mlflow
import pandas as pd
from mlflow.data.pandas_dataset import from_pandas
from transformers import set_seed

from encore.config import Recipe
from encore.tracking import stage_run, write_json
from encore.train.lora import load_policy
from evaluation.generate import generate_playlists
from evaluation.report import comparison_table, plot_metrics, samples_table
from evaluation.score import EvalResult, score_playlists


def eval_rows(prepared: Path, max_requests: int | None) -> list[dict]:
    """Held-out requests in a stable order (by prompt id), at most `max_requests`."""
    frame = pd.read_parquet(prepared / "eval").sort_values("prompt_id", kind="stable")
    if max_requests is not None:
        frame = frame.head(max_requests)
    return frame.to_dict("records")


def adapters_for(recipe: Recipe, model: str) -> list[Path]:
    """The adapters that make `model` (a stage name, or `base`), in training order."""
    stages = [] if model == "base" else [*recipe.adapters_before(model), model]
    return [recipe.out / stage / "adapter" for stage in stages]


def main(recipe: Recipe) -> dict[str, EvalResult]:
    """Generate and score every model of `eval.models`; logs `eval/<model>/<metric>` and a report."""
    final = recipe.policy_stages[-1] if recipe.policy_stages else "base"
    prepared = recipe.out / "prepared"
    report_dir = recipe.out / "eval"
    results: dict[str, EvalResult] = {}
    with stage_run(recipe, "eval"):
        rows = eval_rows(prepared, recipe.eval.max_requests)
        catalog = pd.read_parquet(prepared / "validated" / "catalog")
        mlflow.log_input(
            from_pandas(pd.DataFrame(rows), source=str(prepared / "eval"), name="eval"),
            context="evaluation",
        )
        for name in recipe.eval_models:
            set_seed(recipe.seed)
            model, tokenizer = load_policy(
                recipe.base_model, adapters_for(recipe, name), trust_remote_code=recipe.trust_remote_code
            )
            completions = generate_playlists(
                model,
                tokenizer,
                [r["prompt"] for r in rows],
                max_new_tokens=recipe.eval.max_new_tokens,
                batch_size=recipe.eval.batch_size,
            )
            results[name] = score_playlists(completions, rows, catalog)
            mlflow.log_metrics({f"eval/{name}/{k}": v for k, v in results[name].metrics.items()})
            if name == final:
                mlflow.log_metrics({f"eval/final/{k}": v for k, v in results[name].metrics.items()})
            del model
            gc.collect()
        report_dir.mkdir(parents=True, exist_ok=True)
        summary = "\n\n".join(
            [f"# Evaluation: {recipe.name}", comparison_table(results), "## Samples", samples_table(results)]
        )
        (report_dir / "report.md").write_text(summary)
        plot_metrics(results, report_dir / "metrics.png")
        write_json(report_dir / "metrics.json", {name: r.metrics for name, r in results.items()})
        for model_name, result in results.items():
            write_json(report_dir / f"per_row_{model_name}.json", result.per_row)
        mlflow.log_artifacts(str(report_dir), "report")
    return results

"""The whole path in one parent MLflow run: prep → SFT → preference method → eval → register, then a summary.

The preference method is the recipe's `preference`: `dpo`, `kto`, `orpo`, `simpo`, or `rlhf`
(a reward model, then GRPO against it); encore.methods declares which stages each one trains.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import mlflow
from rich.console import Console

from encore import tracking
from encore.config import Recipe
from encore.progress import Progress
from encore.stages import evaluate, prep, register, run_stage, sft
from encore.summary import noted_stage

SUMMARY_METRICS = ("format_valid", "grounded", "fulfillment", "n_requests")


@dataclass
class PipelineResult:
    run_id: str
    tracking_uri: str
    metrics: dict[str, float] = field(default_factory=dict)
    model_name: str | None = None
    model_version: str | None = None
    alias: str | None = None
    seconds: float = 0.0


def train_preference(recipe: Recipe) -> None:
    """Train the recipe's preference chain (`Recipe.preference_chain`: `[dpo]`, …, `[reward, grpo]` for rlhf)."""
    for stage in recipe.preference_chain():
        run_stage(recipe, stage)


def main(recipe: Recipe, progress: Progress | None = None) -> PipelineResult:
    """Run every enabled stage as a child of one pipeline run; the parent ends FAILED if a stage fails.

    ``progress`` shows a line per stage (by default on stdout).
    """
    start = time.perf_counter()
    progress = progress or Progress(Console(soft_wrap=True))
    uri = tracking.setup(recipe)
    with mlflow.start_run(run_name=f"pipeline-{recipe.name}") as run:
        mlflow.set_tags({"encore.stage": "pipeline", "encore.preference": recipe.preference})
        tracking.log_recipe(recipe)
        with noted_stage(progress, "prep"):
            prep.main(recipe)
        if recipe.section("sft").enabled:
            with noted_stage(progress, "sft"):
                sft.main(recipe)
        if recipe.preference_stage in recipe.policy_stages:  # rlhf: the reward model, then GRPO on one line
            with noted_stage(progress, recipe.preference_stage):
                train_preference(recipe)
        with noted_stage(progress, "eval"):
            results = evaluate.main(recipe)
        final = recipe.final_model
        metrics = {
            f"{model}/{key}": value
            for model, result in results.items()
            for key, value in result.metrics.items()
            if key in SUMMARY_METRICS
        }
        if final in results:
            metrics |= {f"final/{k}": v for k, v in results[final].metrics.items() if k in SUMMARY_METRICS}
        mlflow.log_metrics({f"eval/{k}": v for k, v in metrics.items()})
        out = PipelineResult(run.info.run_id, uri, metrics)
        if recipe.registry.enabled:
            final_metrics = results[final].metrics if final in results else {}
            with noted_stage(progress, "register"):
                out.model_name, out.model_version = register.main(recipe, final_metrics)
            out.alias = recipe.registry.alias
        out.seconds = time.perf_counter() - start
        mlflow.log_metric("pipeline/seconds", out.seconds)
    return out

"""The whole path in one parent MLflow run: prep → SFT → DPO → eval → register, then a short summary."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import mlflow

from encore import tracking
from encore.config import Recipe
from encore.stages import dpo, evaluate, prep, register, sft


@dataclass
class PipelineResult:
    run_id: str
    tracking_uri: str
    metrics: dict[str, float] = field(default_factory=dict)
    model_name: str | None = None
    model_version: str | None = None
    alias: str | None = None
    seconds: float = 0.0


def main(recipe: Recipe) -> PipelineResult:
    """Run every enabled stage as a child of one pipeline run; the parent ends FAILED if a stage fails."""
    start = time.perf_counter()
    uri = tracking.setup(recipe)
    with mlflow.start_run(run_name=f"pipeline-{recipe.name}") as run:
        mlflow.set_tag("encore.stage", "pipeline")
        tracking.log_recipe(recipe)
        prep.main(recipe)
        if recipe.sft.enabled:
            sft.main(recipe)
        if recipe.dpo.enabled:
            dpo.main(recipe)
        results = evaluate.main(recipe)
        final = "dpo" if recipe.dpo.enabled else "sft"
        metrics = {
            f"{model}/{key}": value
            for model, result in results.items()
            for key, value in result.metrics.items()
            if key in ("format_valid", "grounded", "fulfillment", "n_requests")
        }
        mlflow.log_metrics({f"eval/{k}": v for k, v in metrics.items()})
        out = PipelineResult(run.info.run_id, uri, metrics)
        if recipe.registry.enabled:
            final_metrics = results[final].metrics if final in results else {}
            out.model_name, out.model_version = register.main(recipe, final_metrics)
            out.alias = recipe.registry.alias
        out.seconds = time.perf_counter() - start
        mlflow.log_metric("pipeline/seconds", out.seconds)
    return out

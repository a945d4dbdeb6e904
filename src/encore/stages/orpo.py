"""ORPO stage: odds-ratio preference optimisation, reference-free, with `trl.experimental.orpo.ORPOTrainer`.

ORPO adds an odds-ratio preference term to the SFT loss on the chosen answer, so it needs no
reference model and can replace SFT (`sft.enabled: false`: it then trains on the base). With SFT
enabled it trains a fresh adapter on the SFT-merged model, like the other preference stages.
TRL keeps ORPO in `trl.experimental`; the API used here is pinned by tests/unit/test_trl_api.py.
"""

from __future__ import annotations

import os
from pathlib import Path

import mlflow
from transformers import set_seed

from encore.config import Recipe
from encore.tracking import MlflowMetricsCallback, log_training_data, training_run
from encore.train.data import preference_pairs, read_split
from encore.train.lora import build_lora_config, export_merged, load_start_model
from encore.train.run import train_adapter, trl_args

os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")  # known and pinned; the warning says nothing new
from trl.experimental.orpo import ORPOConfig, ORPOTrainer


def main(recipe: Recipe) -> Path:
    """Train the ORPO adapter on top of the SFT model (the base when SFT is disabled); returns `<out>/orpo/adapter`."""
    set_seed(recipe.seed)
    prepared = recipe.out / "prepared" / "pairs"
    stage_dir = recipe.out / "orpo"
    adapter_dir = stage_dir / "adapter"
    before = [recipe.out / s / "adapter" for s in recipe.adapters_before("orpo")]
    with training_run(recipe, "orpo") as run:
        rows = read_split(prepared, "train")
        if run is not None:  # rank 0 (or the only process) talks to MLflow
            log_training_data(rows, prepared, "pairs-train")
        model, tokenizer = load_start_model(
            recipe.base_model,
            before,
            quantize=recipe.lora.quantize,
            merged_dir=stage_dir / "start",
            trust_remote_code=recipe.trust_remote_code,
        )
        args = ORPOConfig(
            output_dir=str(stage_dir / "checkpoints"),
            seed=recipe.seed,
            report_to="none",
            # TRL's preference collator reads every column: keep them (TRL would say so and do it anyway).
            **trl_args({"remove_unused_columns": False, **recipe.orpo.args}),
        )
        trainer = ORPOTrainer(
            model=model,
            args=args,
            train_dataset=preference_pairs(rows),
            processing_class=tokenizer,
            peft_config=build_lora_config(
                recipe.lora.r,
                recipe.lora.alpha,
                recipe.lora.dropout,
                recipe.lora.target_modules,
                use_dora=recipe.lora.use_dora,
            ),
            callbacks=[MlflowMetricsCallback()],
        )
        metrics = train_adapter(trainer, adapter_dir)
        if run is None:
            return adapter_dir  # another rank of a distributed run: rank 0 saved the adapter and logs
        mlflow.log_metrics({**metrics, "train/examples": float(len(rows))})
        mlflow.log_artifacts(str(adapter_dir), "adapter")
        if recipe.orpo.merge:
            merged = export_merged(
                recipe.base_model,
                [*before, adapter_dir],
                stage_dir / "merged",
                trust_remote_code=recipe.trust_remote_code,
            )
            mlflow.set_tag("encore.merged", str(merged))
    return adapter_dir

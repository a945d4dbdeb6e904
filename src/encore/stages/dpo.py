"""DPO stage: a fresh LoRA adapter on the SFT-merged model, trained on preference pairs with TRL's DPOTrainer.

The SFT adapter is merged into the weights first, so the reference policy is exactly the SFT
model and TRL computes it by disabling the DPO adapter: no second copy of the model in memory.
TRL's loss variants (`dpo.args.loss_type`: sigmoid, ipo, robust, hinge, …) and
`precompute_ref_log_probs` are DPOConfig options.
"""

from __future__ import annotations

from pathlib import Path

import mlflow
from transformers import set_seed
from trl import DPOConfig, DPOTrainer

from encore.config import Recipe
from encore.tracking import MlflowMetricsCallback, log_training_data, training_run
from encore.train.data import preference_pairs, read_split
from encore.train.lora import build_lora_config, export_merged, load_start_model
from encore.train.run import train_adapter, trl_args


def main(recipe: Recipe) -> Path:
    """Train the DPO adapter on top of the SFT model (the base when SFT is disabled); returns `<out>/dpo/adapter`."""
    set_seed(recipe.seed)
    prepared = recipe.out / "prepared" / "pairs"
    stage_dir = recipe.out / "dpo"
    adapter_dir = stage_dir / "adapter"
    before = [recipe.out / s / "adapter" for s in recipe.adapters_before("dpo")]
    with training_run(recipe, "dpo") as run:
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
        args = DPOConfig(
            output_dir=str(stage_dir / "checkpoints"),
            seed=recipe.seed,
            report_to="none",
            **trl_args(recipe.dpo.args),
        )
        trainer = DPOTrainer(
            model=model,
            ref_model=None,  # the adapter-disabled model is the reference
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
        if run is not None:  # the evidence that no second model was loaded: TRL keeps none
            mlflow.set_tag(
                "encore.reference", "adapter-disabled" if trainer.ref_model is None else "separate-model"
            )
        metrics = train_adapter(trainer, adapter_dir)
        if run is None:
            return adapter_dir  # another rank of a distributed run: rank 0 saved the adapter and logs
        mlflow.log_metrics({**metrics, "train/examples": float(len(rows))})
        mlflow.log_artifacts(str(adapter_dir), "adapter")
        if recipe.dpo.merge:
            merged = export_merged(
                recipe.base_model,
                [*before, adapter_dir],
                stage_dir / "merged",
                trust_remote_code=recipe.trust_remote_code,
            )
            mlflow.set_tag("encore.merged", str(merged))
    return adapter_dir

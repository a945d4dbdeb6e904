"""KTO stage: a fresh LoRA adapter on the SFT-merged model, trained on unpaired thumbs with TRL's KTOTrainer.

KTO needs no pairs: each row is one response labelled desirable or not (`prepared/unpaired`).
As for DPO, the reference is the SFT-merged model with the KTO adapter disabled (no second copy).
KTO estimates its KL term from the other rows of a batch, so `per_device_train_batch_size` must be > 1.
"""

from __future__ import annotations

from pathlib import Path

import mlflow
from transformers import set_seed
from trl import KTOConfig, KTOTrainer

from encore.config import Recipe
from encore.tracking import MlflowMetricsCallback, log_training_data, training_run
from encore.train.data import read_split, unpaired_for_kto
from encore.train.lora import build_lora_config, export_merged, load_start_model
from encore.train.run import train_adapter, trl_args


def main(recipe: Recipe) -> Path:
    """Train the KTO adapter on top of the SFT model (the base when SFT is disabled); returns `<out>/kto/adapter`."""
    set_seed(recipe.seed)
    prepared = recipe.out / "prepared" / "unpaired"
    stage_dir = recipe.out / "kto"
    adapter_dir = stage_dir / "adapter"
    before = [recipe.out / s / "adapter" for s in recipe.adapters_before("kto")]
    with training_run(recipe, "kto") as run:
        rows = read_split(prepared, "train")
        if run is not None:  # rank 0 (or the only process) talks to MLflow
            log_training_data(rows, prepared, "unpaired-train")
        model, tokenizer = load_start_model(
            recipe.base_model,
            before,
            quantize=recipe.lora.quantize,
            merged_dir=stage_dir / "start",
            trust_remote_code=recipe.trust_remote_code,
        )
        args = KTOConfig(
            output_dir=str(stage_dir / "checkpoints"),
            seed=recipe.seed,
            report_to="none",
            **trl_args(recipe.kto.args),
        )
        trainer = KTOTrainer(
            model=model,
            ref_model=None,  # the adapter-disabled model is the reference
            args=args,
            train_dataset=unpaired_for_kto(rows),
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
        desirable = sum(rows["label"])
        mlflow.log_metrics(
            {**metrics, "train/examples": float(len(rows)), "train/desirable_fraction": desirable / len(rows)}
        )
        mlflow.log_artifacts(str(adapter_dir), "adapter")
        if recipe.kto.merge:
            merged = export_merged(
                recipe.base_model,
                [*before, adapter_dir],
                stage_dir / "merged",
                trust_remote_code=recipe.trust_remote_code,
            )
            mlflow.set_tag("encore.merged", str(merged))
    return adapter_dir

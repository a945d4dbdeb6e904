"""DPO stage: a fresh LoRA adapter on the SFT-merged model, trained on preference pairs with TRL's DPOTrainer.

The SFT adapter is merged into the weights first, so the reference policy is exactly the SFT
model and TRL computes it by disabling the DPO adapter: no second copy of the model in memory.
"""

from __future__ import annotations

from pathlib import Path

import mlflow
from mlflow.data.pandas_dataset import from_pandas
from transformers import set_seed
from trl import DPOConfig, DPOTrainer

from encore.config import Recipe
from encore.tracking import MlflowMetricsCallback, stage_run
from encore.train.data import pairs_for_dpo, read_split
from encore.train.lora import build_lora_config, load_policy
from encore.train.run import train_adapter, trl_args


def main(recipe: Recipe, sft_adapter: Path | None = None) -> Path:
    """Train the DPO adapter on top of the SFT model; returns `<out>/dpo/adapter`."""
    set_seed(recipe.seed)
    prepared = recipe.out / "prepared" / "pairs"
    sft_adapter = sft_adapter or recipe.out / "sft" / "adapter"
    adapter_dir = recipe.out / "dpo" / "adapter"
    with stage_run(recipe, "dpo"):
        rows = read_split(prepared, "train")
        mlflow.log_input(
            from_pandas(rows.to_pandas(), source=str(prepared), name="pairs-train"),
            context="training",
        )
        model, tokenizer = load_policy(
            recipe.base_model, [sft_adapter], merge_last=True, trust_remote_code=recipe.trust_remote_code
        )
        args = DPOConfig(
            output_dir=str(recipe.out / "dpo" / "checkpoints"),
            seed=recipe.seed,
            report_to="none",
            **trl_args(recipe.dpo.args),
        )
        trainer = DPOTrainer(
            model=model,
            ref_model=None,  # the adapter-disabled model is the reference
            args=args,
            train_dataset=pairs_for_dpo(rows),
            processing_class=tokenizer,
            peft_config=build_lora_config(
                recipe.lora.r, recipe.lora.alpha, recipe.lora.dropout, recipe.lora.target_modules
            ),
            callbacks=[MlflowMetricsCallback()],
        )
        metrics = train_adapter(trainer, adapter_dir)
        mlflow.log_metrics({**metrics, "train/examples": float(len(rows))})
        mlflow.log_artifacts(str(adapter_dir), "adapter")
    return adapter_dir

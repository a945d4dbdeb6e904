"""SFT stage: LoRA supervised fine-tuning on the prepared `sft` set with TRL's SFTTrainer."""

from __future__ import annotations

from pathlib import Path

import mlflow
from mlflow.data.pandas_dataset import from_pandas
from transformers import set_seed
from trl import SFTConfig, SFTTrainer

from encore.config import Recipe
from encore.models import load_model
from encore.tracking import MlflowMetricsCallback, stage_run
from encore.train.data import read_split, sft_as_prompt_completion
from encore.train.lora import build_lora_config
from encore.train.run import train_adapter, trl_args


def main(recipe: Recipe) -> Path:
    """Train the SFT adapter; returns the directory it is saved in (`<out>/sft/adapter`)."""
    set_seed(recipe.seed)
    prepared = recipe.out / "prepared" / "sft"
    adapter_dir = recipe.out / "sft" / "adapter"
    with stage_run(recipe, "sft"):
        rows = read_split(prepared, "train")
        mlflow.log_input(
            from_pandas(rows.to_pandas(), source=str(prepared), name="sft-train"),
            context="training",
        )
        model, tokenizer = load_model(recipe.base_model, trust_remote_code=recipe.trust_remote_code)
        args = SFTConfig(
            output_dir=str(recipe.out / "sft" / "checkpoints"),
            seed=recipe.seed,
            report_to="none",
            **trl_args(recipe.sft.args),
        )
        trainer = SFTTrainer(
            model=model,
            args=args,
            train_dataset=sft_as_prompt_completion(rows),
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

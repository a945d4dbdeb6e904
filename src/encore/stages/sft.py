"""SFT stage: LoRA (or DoRA / QLoRA) supervised fine-tuning on the prepared `sft` set with TRL's SFTTrainer."""

from __future__ import annotations

from pathlib import Path

import mlflow
from transformers import set_seed
from trl import SFTTrainer

from encore.config import Recipe
from encore.tracking import MlflowMetricsCallback, log_training_data, training_run
from encore.train.data import read_split, sft_as_prompt_completion
from encore.train.lora import build_lora_config, load_start_model
from encore.train.run import publish_adapter, train_adapter, trl_args
from encore.train.trl_config import trl_config_class


def main(recipe: Recipe) -> Path:
    """Train the SFT adapter; returns the directory it is saved in (`<out>/sft/adapter`)."""
    set_seed(recipe.seed)
    prepared = recipe.out / "prepared" / "sft"
    stage_dir = recipe.out / "sft"
    adapter_dir = stage_dir / "adapter"
    with training_run(recipe, "sft") as run:
        rows = read_split(prepared, "train")
        if run is not None:  # rank 0 (or the only process) talks to MLflow
            log_training_data(rows, prepared, "sft-train")
        model, tokenizer = load_start_model(
            recipe.base_model, [], quantize=recipe.lora.quantize, trust_remote_code=recipe.trust_remote_code
        )
        # packing / padding_free / gradient_checkpointing are SFTConfig options: they come with `args`.
        args = trl_config_class("sft")(
            output_dir=str(stage_dir / "checkpoints"),
            seed=recipe.seed,
            report_to="none",
            **trl_args(recipe.section("sft").args),
        )
        trainer = SFTTrainer(
            model=model,
            args=args,
            train_dataset=sft_as_prompt_completion(rows),
            processing_class=tokenizer,
            peft_config=build_lora_config(**recipe.lora.adapter_args()),
            callbacks=[MlflowMetricsCallback()],
        )
        metrics = train_adapter(trainer, adapter_dir)
        if run is None:
            return adapter_dir  # another rank of a distributed run: rank 0 saved the adapter and logs
        # `train/rows`: what the trainer iterates over, fewer than the examples when `packing` fills rows.
        rows_trained = float(len(trainer.train_dataset))  # type: ignore[arg-type]
        mlflow.log_metrics({**metrics, "train/examples": float(len(rows)), "train/rows": rows_trained})
        publish_adapter(
            [adapter_dir],
            recipe.base_model,
            recipe.merged_dir("sft"),
            trust_remote_code=recipe.trust_remote_code,
        )
    return adapter_dir

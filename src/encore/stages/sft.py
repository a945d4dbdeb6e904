"""SFT stage: LoRA (or DoRA / QLoRA) supervised fine-tuning on the prepared `sft` set with TRL's SFTTrainer."""

from __future__ import annotations

from pathlib import Path
from typing import Any

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
    stage_dir = recipe.out / "sft"
    train_on(
        recipe,
        recipe.out / "prepared" / "sft",
        [],
        stage_dir,
        recipe.section("sft").args,
        merged=recipe.merged_dir("sft"),
    )
    return stage_dir / "adapter"


def train_on(
    recipe: Recipe,
    prepared: Path,
    before: list[Path],
    stage_dir: Path,
    sft_args: dict[str, Any],
    *,
    merged: Path | None = None,
) -> Path | None:
    """One SFT run on the `train` rows of `prepared`, from the base with `before` merged in, with `sft_args`.

    The adapter goes to `<stage_dir>/adapter` (returned; None on the ranks that do not log). The
    flywheel's matched-compute control (`encore.flywheel`) continues the SFT model this way.
    """
    set_seed(recipe.seed)
    adapter_dir = stage_dir / "adapter"
    with training_run(recipe, "sft", stage_dir) as run:
        rows = read_split(prepared, "train")
        if run is not None:  # rank 0 (or the only process) talks to MLflow
            log_training_data(rows, prepared, "sft-train")
        model, tokenizer = load_start_model(
            recipe.base_model,
            before,
            quantize=recipe.lora.quantize,
            merged_dir=stage_dir / "start",
            trust_remote_code=recipe.trust_remote_code,
        )
        # packing / padding_free / gradient_checkpointing are SFTConfig options: they come with `args`.
        args = trl_config_class("sft")(
            output_dir=str(stage_dir / "checkpoints"),
            seed=recipe.seed,
            report_to="none",
            **trl_args(sft_args),
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
            return None  # another rank of a distributed run: rank 0 saved the adapter and logs
        # `train/rows`: what the trainer iterates over, fewer than the examples when `packing` fills rows.
        rows_trained = float(len(trainer.train_dataset))  # type: ignore[arg-type]
        mlflow.log_metrics({**metrics, "train/examples": float(len(rows)), "train/rows": rows_trained})
        publish_adapter(
            [*before, adapter_dir], recipe.base_model, merged, trust_remote_code=recipe.trust_remote_code
        )
    return adapter_dir

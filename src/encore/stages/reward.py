"""Reward stage (RLHF, step 1): a reward model trained on the preference pairs with TRL's RewardTrainer.

The model is the base with a one-output `score` head (`AutoModelForSequenceClassification`), trained
as a LoRA adapter with PEFT's `SEQ_CLS` task (which also trains the new head in full). It scores a
prompt + playlist; the `grpo` stage turns those scores into one of its rewards. After training it is
scored as a model on the held-out users' pairs (`reward/…` metrics, `heldout_quality`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import mlflow
import pandas as pd
from transformers import set_seed
from trl import RewardTrainer

from encore.config import Recipe
from encore.tracking import MlflowMetricsCallback, log_training_data, training_run
from encore.train.data import eval_pairs, preference_pairs, read_split
from encore.train.lora import build_lora_config, load_reward_backbone, load_reward_model
from encore.train.run import train_adapter, trl_args
from encore.train.trl_config import trl_config_class
from evaluation.pair_labels import logged_intents, pair_signs
from evaluation.tasks.reward_model import reward_quality, reward_scores


def main(recipe: Recipe) -> Path:
    """Train the reward model's adapter and head; returns `<out>/reward/adapter`."""
    set_seed(recipe.seed)
    prepared = recipe.out / "prepared" / "pairs"
    stage_dir = recipe.out / "reward"
    adapter_dir = stage_dir / "adapter"
    with training_run(recipe, "reward") as run:
        rows = read_split(prepared, "train")
        if run is not None:  # rank 0 (or the only process) talks to MLflow
            log_training_data(rows, prepared, "pairs-train")
        model, tokenizer = load_reward_backbone(
            recipe.base_model, quantize=recipe.lora.quantize, trust_remote_code=recipe.trust_remote_code
        )
        args = trl_config_class("reward")(
            output_dir=str(stage_dir / "checkpoints"),
            seed=recipe.seed,
            report_to="none",
            **trl_args(recipe.section("reward").args),
        )
        trainer = RewardTrainer(
            model=model,
            args=args,
            train_dataset=preference_pairs(rows),
            processing_class=tokenizer,
            peft_config=build_lora_config(**recipe.lora.adapter_args(), task_type="SEQ_CLS"),
            callbacks=[MlflowMetricsCallback()],
        )
        metrics = train_adapter(trainer, adapter_dir)
        if run is None:
            return adapter_dir  # another rank of a distributed run: rank 0 saved the adapter and logs
        mlflow.log_metrics({**metrics, "train/examples": float(len(rows))})
        mlflow.log_metrics(
            {f"reward/{k}": v for k, v in heldout_quality(recipe, trainer.model, tokenizer).items()}
        )
        mlflow.log_artifacts(str(adapter_dir), "adapter")
        if recipe.section("reward").merge:
            merged, merged_tokenizer = load_reward_model(
                recipe.base_model, adapter_dir, trust_remote_code=recipe.trust_remote_code
            )
            merged.save_pretrained(str(stage_dir / "merged"), safe_serialization=True)
            merged_tokenizer.save_pretrained(str(stage_dir / "merged"))
            mlflow.set_tag("encore.merged", str(stage_dir / "merged"))
    return adapter_dir


def heldout_quality(recipe: Recipe, model: Any, tokenizer: Any) -> dict[str, float]:
    """The reward model as a model (evaluation/tasks/reward_model.py): on the held-out users' pairs
    (`eval.max_pairs` of them), its pair accuracy and calibration and, on simulator data, how often it
    favours the side the hidden intent fits better, beside how often the logged label does."""
    prepared = recipe.out / "prepared"
    pairs = eval_pairs(prepared, recipe.eval.pair_limit)
    if not pairs:
        return {}
    chosen, rejected = reward_scores(model, tokenizer, pairs, batch_size=recipe.eval.batch_size)
    prompts = logged_intents(recipe.out / "raw", recipe.hash_key)
    signs = None
    if prompts is not None:
        catalog = pd.read_parquet(prepared / "validated" / "catalog")
        signs = pair_signs(pd.DataFrame(pairs), prompts, catalog)
    return reward_quality(chosen, rejected, signs)

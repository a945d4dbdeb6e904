"""GRPO stage (RLHF, step 2): online RL of a fresh LoRA adapter on the SFT-merged model with TRL's GRPOTrainer.

For each training prompt GRPO samples `num_generations` playlists and scores every one with a
weighted sum of rewards (`grpo.rewards`): the `reward` stage's model, and programmatic checks
that reuse the eval tasks (`encore.train.rewards`): valid format, lines grounded in the
candidates or catalog, no repeated artist, the length the request asks for. A zero weight drops
a reward. With `grpo.args.beta > 0` the KL reference is the adapter-disabled model.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Any

import mlflow
import pandas as pd
from transformers import set_seed
from trl import GRPOTrainer

from encore.config import Recipe
from encore.methods import GrpoStageConfig
from encore.tracking import MlflowMetricsCallback, log_training_data, training_run
from encore.train.data import read_split, unique_prompts
from encore.train.lora import build_lora_config, load_reward_model, load_start_model
from encore.train.rewards import distinct_artists_reward, format_reward, grounded_reward, length_reward
from encore.train.run import publish_adapter, train_adapter, trl_args
from encore.train.trl_config import trl_config_class
from playlist.grounding import catalog_tracks
from playlist.prompts import catalog_key_index


def main(recipe: Recipe) -> Path:
    """Train the GRPO adapter on top of the SFT model (the base when SFT is disabled); returns `<out>/grpo/adapter`."""
    set_seed(recipe.seed)
    prepared = recipe.out / "prepared"
    stage_dir = recipe.out / "grpo"
    adapter_dir = stage_dir / "adapter"
    before = [recipe.out / s / "adapter" for s in recipe.adapters_before("grpo")]
    with training_run(recipe, "grpo") as run:
        rows = unique_prompts(read_split(prepared / "pairs", "train"))
        if run is not None:  # rank 0 (or the only process) talks to MLflow
            log_training_data(rows, prepared / "pairs", "prompts-train")
        catalog = pd.read_parquet(prepared / "validated" / "catalog")
        index = catalog_key_index(list(catalog_tracks(catalog).values()))
        section = recipe.section("grpo")
        assert isinstance(section, GrpoStageConfig)
        weights = section.rewards
        rewards: list[tuple[str, Any, Any, float]] = []  # (name, reward function, its tokenizer, weight)
        if recipe.section("reward").enabled and weights.reward_model > 0:
            reward_model, reward_tokenizer = load_reward_model(
                recipe.base_model,
                recipe.out / "reward" / "adapter",
                trust_remote_code=recipe.trust_remote_code,
            )
            reward_model.config._name_or_path = (
                "reward_model"  # TRL logs `rewards/<this>/mean`: a stable name
            )
            rewards.append(("reward_model", reward_model, reward_tokenizer, weights.reward_model))
        rewards += [
            ("format", format_reward, None, weights.format),
            ("grounded", partial(grounded_reward, catalog_index=index), None, weights.grounded),
            ("distinct_artists", distinct_artists_reward, None, weights.distinct_artists),
            ("length", length_reward, None, weights.length),
        ]
        rewards = [r for r in rewards if r[3] > 0]
        if run is not None:  # rank 0 (or the only process) talks to MLflow
            mlflow.set_tag("encore.grpo_rewards", ",".join(f"{r[0]}={r[3]:g}" for r in rewards))

        model, tokenizer = load_start_model(
            recipe.base_model,
            before,
            quantize=recipe.lora.quantize,
            merged_dir=stage_dir / "start",
            trust_remote_code=recipe.trust_remote_code,
        )
        args = trl_config_class("grpo")(
            output_dir=str(stage_dir / "checkpoints"),
            seed=recipe.seed,
            report_to="none",
            reward_weights=[r[3] for r in rewards],
            **trl_args(recipe.section("grpo").args),
        )
        trainer = GRPOTrainer(
            model=model,
            reward_funcs=[r[1] for r in rewards],
            args=args,
            train_dataset=rows,
            processing_class=tokenizer,
            reward_processing_classes=[r[2] for r in rewards],
            peft_config=build_lora_config(**recipe.lora.adapter_args()),
            callbacks=[MlflowMetricsCallback()],
        )
        metrics = train_adapter(trainer, adapter_dir)
        if run is None:
            return adapter_dir  # another rank of a distributed run: rank 0 saved the adapter and logs
        mlflow.log_metrics({**metrics, "train/examples": float(len(rows))})
        publish_adapter(
            [*before, adapter_dir],
            recipe.base_model,
            recipe.merged_dir("grpo"),
            trust_remote_code=recipe.trust_remote_code,
        )
    return adapter_dir

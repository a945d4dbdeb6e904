"""What the preference stages (DPO, KTO, ORPO, SimPO) share: one run of a TRL trainer on a fresh LoRA adapter.

Each stage trains a new adapter on the model the stages before it made (their adapters merged in; the
base when SFT is disabled), on `prepared/pairs` or, for KTO, `prepared/unpaired`. The stages differ
only in what :class:`PreferenceStage` holds: their data, their TRL trainer, the TRL args they set
around the recipe's, and whether the trainer has a reference model; the TRL config class and the args a
stage pins come from its declaration in `encore.methods`. Where it has one, the
reference is the start model with the new adapter disabled, so no second copy is loaded.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import mlflow
from datasets import Dataset
from transformers import set_seed

from encore.config import Recipe
from encore.methods import method
from encore.tracking import MlflowMetricsCallback, log_training_data, training_run
from encore.train.data import read_split
from encore.train.lora import build_lora_config, load_start_model
from encore.train.run import publish_adapter, train_adapter, trl_args
from encore.train.trl_config import trl_config_class


@dataclass(frozen=True)
class PreferenceStage:
    """One preference stage: the parts that differ from the others.

    Attributes:
        name: the stage and its recipe section (``dpo``, ``kto``, ``orpo``, ``simpo``).
        data: the prep output it trains on, under ``prepared/`` (``pairs`` or ``unpaired``).
        dataset: turns the prepared rows into the dataset its trainer reads.
        trainer: the TRL trainer class.
        defaults: TRL args the recipe's `args:` may override.
        reference: the trainer takes a reference model (then the adapter-disabled start model).
        metrics: extra `train/…` metrics from the training rows.
    """

    name: str
    data: str
    dataset: Callable[[Dataset], Dataset]
    trainer: type
    defaults: Mapping[str, Any] = field(default_factory=dict)
    reference: bool = True
    metrics: Callable[[Dataset], dict[str, float]] | None = None


def train(recipe: Recipe, stage: PreferenceStage) -> Path:
    """Train `stage`'s adapter on top of the earlier stages' model; returns `<out>/<stage>/adapter`."""
    prepared = recipe.out / "prepared" / stage.data
    before = [recipe.out / s / "adapter" for s in recipe.adapters_before(stage.name)]
    train_on(recipe, stage, prepared, before, recipe.out / stage.name, merged=recipe.merged_dir(stage.name))
    return recipe.out / stage.name / "adapter"


def train_on(
    recipe: Recipe,
    stage: PreferenceStage,
    prepared: Path,
    before: list[Path],
    stage_dir: Path,
    *,
    merged: Path | None = None,
) -> Path | None:
    """One run of `stage`'s trainer on the `train` rows of `prepared`, from the base with `before` merged in.

    The adapter goes to `<stage_dir>/adapter` (returned; None on the ranks that do not log) and into the
    run's artifacts; with `merged`, the policy up to it also as merged weights there. A flywheel round
    (`encore.flywheel`) calls it with its own pairs, its policy's adapters and its directory.
    """
    set_seed(recipe.seed)
    section = recipe.section(stage.name)
    adapter_dir = stage_dir / "adapter"
    with training_run(recipe, stage.name, stage_dir) as run:
        rows = read_split(prepared, "train")
        if run is not None:  # rank 0 (or the only process) talks to MLflow
            log_training_data(rows, prepared, f"{stage.data}-train")
        model, tokenizer = load_start_model(
            recipe.base_model,
            before,
            quantize=recipe.lora.quantize,
            merged_dir=stage_dir / "start",
            trust_remote_code=recipe.trust_remote_code,
        )
        args = trl_config_class(stage.name)(
            output_dir=str(stage_dir / "checkpoints"),
            seed=recipe.seed,
            report_to="none",
            **trl_args({**stage.defaults, **section.args, **method(stage.name).pinned}),
        )
        trainer = stage.trainer(
            model=model,
            **({"ref_model": None} if stage.reference else {}),  # None: the adapter-disabled model
            args=args,
            train_dataset=stage.dataset(rows),
            processing_class=tokenizer,
            peft_config=build_lora_config(**recipe.lora.adapter_args()),
            callbacks=[MlflowMetricsCallback()],
        )
        if run is not None and stage.reference:  # the evidence that no second model was loaded
            mlflow.set_tag(
                "encore.reference", "adapter-disabled" if trainer.ref_model is None else "separate-model"
            )
        metrics = train_adapter(trainer, adapter_dir)
        if run is None:
            return None  # another rank of a distributed run: rank 0 saved the adapter and logs
        extra = stage.metrics(rows) if stage.metrics else {}
        mlflow.log_metrics({**metrics, "train/examples": float(len(rows)), **extra})
        publish_adapter(
            [*before, adapter_dir], recipe.base_model, merged, trust_remote_code=recipe.trust_remote_code
        )
    return adapter_dir

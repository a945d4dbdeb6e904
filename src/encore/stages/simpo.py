"""SimPO stage: simple, reference-free preference optimisation with `trl.experimental.cpo.CPOTrainer`.

TRL implements SimPO as CPOTrainer with `loss_type="simpo"`: a length-normalised log-likelihood
margin (`beta`, target margin `simpo_gamma`) and no reference model. encore pins `loss_type` to
`simpo` and sets `cpo_alpha: 0` (pure SimPO; a positive `simpo.args.cpo_alpha` adds CPO's
behaviour-cloning term, "CPO-SimPO"). TRL keeps CPO in `trl.experimental`; the API used here is
pinned by tests/unit/test_trl_api.py.
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
from trl.experimental.cpo import CPOConfig, CPOTrainer


def main(recipe: Recipe) -> Path:
    """Train the SimPO adapter on top of the SFT model (the base when SFT is disabled); returns `<out>/simpo/adapter`."""
    set_seed(recipe.seed)
    prepared = recipe.out / "prepared" / "pairs"
    stage_dir = recipe.out / "simpo"
    adapter_dir = stage_dir / "adapter"
    before = [recipe.out / s / "adapter" for s in recipe.adapters_before("simpo")]
    with training_run(recipe, "simpo") as run:
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
        args = CPOConfig(
            output_dir=str(stage_dir / "checkpoints"),
            seed=recipe.seed,
            report_to="none",
            # Pure SimPO unless the recipe asks for CPO's behaviour-cloning term (cpo_alpha > 0);
            # TRL's preference collator reads every column: keep them.
            **trl_args(
                {"remove_unused_columns": False, "cpo_alpha": 0.0, **recipe.simpo.args, "loss_type": "simpo"}
            ),
        )
        trainer = CPOTrainer(
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
        if recipe.simpo.merge:
            merged = export_merged(
                recipe.base_model,
                [*before, adapter_dir],
                stage_dir / "merged",
                trust_remote_code=recipe.trust_remote_code,
            )
            mlflow.set_tag("encore.merged", str(merged))
    return adapter_dir

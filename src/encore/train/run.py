"""Running a TRL trainer on a LoRA adapter and returning the evidence: losses, adapter moved, base untouched."""

from __future__ import annotations

import shutil
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import mlflow
import torch
from peft import PeftModel
from transformers import Trainer

from encore.train import debug, resume
from encore.train.checks import lora_norm, max_change, weight_checksums
from encore.train.lora import export_merged

if TYPE_CHECKING:
    from encore.config import Recipe


def trl_args(args: dict[str, Any]) -> dict[str, Any]:
    """A recipe's `args:` block with the precision filled in when the recipe leaves it out.

    TRL 1.x defaults to bf16 autocast. On a CPU without native bf16 that is 10–20× slower than
    fp32 (measured: docs/benchmarks.md), so without CUDA encore asks for fp32 on the CPU unless
    the recipe says otherwise.
    """
    if torch.cuda.is_available():
        return dict(args)
    return {"bf16": False, "use_cpu": True, **args}


def train_adapter(trainer: Trainer, adapter_dir: Path) -> dict[str, float]:
    """Train, save the adapter and tokenizer to `adapter_dir`, and return `train/…` summary metrics.

    Training continues from the checkpoint the stage's run chose (`tracking.training_run`), if any;
    `train/final_loss` is then the mean over the steps trained in this process. In a distributed
    run every rank trains and computes the metrics; only the main process writes the adapter.
    """
    model = cast(PeftModel, trainer.model)
    base_before = weight_checksums(model, lora=False)
    recorder = debug.start(trainer)
    checkpoint = resume.active_checkpoint()
    result = trainer.train(resume_from_checkpoint=str(checkpoint) if checkpoint else None)
    metrics = {
        "train/final_loss": float(result.training_loss),
        "train/lora_b_norm": lora_norm(model),
        "train/base_max_change": max_change(base_before, weight_checksums(model, lora=False)),
        "train/steps": float(result.global_step),
    }
    save_adapter(trainer, adapter_dir)
    if recorder is not None:
        recorder.write(trainer)
    return metrics


def save_adapter(trainer: Trainer, adapter_dir: Path) -> None:
    """Write the trained adapter and tokenizer once, from the main process.

    With FSDP or DeepSpeed the weights are sharded: every rank takes part in gathering them
    (`accelerator.get_state_dict` is a collective) before rank 0 writes them.
    """
    state_dict = None
    if trainer.is_fsdp_enabled or trainer.is_deepspeed_enabled:
        wrapped = trainer.model_wrapped if trainer.is_deepspeed_enabled else trainer.model
        state_dict = trainer.accelerator.get_state_dict(wrapped)
    if trainer.is_world_process_zero():
        save_atomically(trainer.model, trainer.processing_class, adapter_dir, state_dict=state_dict)


def save_atomically(
    model: Any, tokenizer: Any, target: Path, *, state_dict: dict[str, Any] | None = None
) -> None:
    """Save into a hidden sibling directory, then rename it into place (`state_dict`: gathered weights).

    A crash or a full disk half-way leaves only the hidden directory (removed on failure), never a
    `target` that looks complete; an older `target` is replaced only once the new one is whole.
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.tmp-{uuid.uuid4().hex[:8]}")
    try:
        model.save_pretrained(str(tmp), **({"state_dict": state_dict} if state_dict is not None else {}))
        if tokenizer is not None:
            tokenizer.save_pretrained(str(tmp))
        if target.exists():
            old = target.with_name(f".{target.name}.old-{uuid.uuid4().hex[:8]}")
            target.rename(old)
            tmp.rename(target)
            shutil.rmtree(old)
        else:
            tmp.rename(target)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def publish_adapter(recipe: Recipe, stage: str, adapters: list[Path]) -> None:
    """Log the stage's adapter (the last of `adapters`) as the active run's `adapter` artifacts; with
    `<stage>.merge: true` also write the policy up to it as merged weights to `<out>/<stage>/merged`."""
    mlflow.log_artifacts(str(adapters[-1]), "adapter")
    if getattr(recipe, stage).merge:
        merged = export_merged(
            recipe.base_model,
            adapters,
            recipe.out / stage / "merged",
            trust_remote_code=recipe.trust_remote_code,
        )
        mlflow.set_tag("encore.merged", str(merged))

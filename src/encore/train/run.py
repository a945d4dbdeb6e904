"""Running a TRL trainer on a LoRA adapter and returning the evidence: losses, adapter moved, base untouched."""

from __future__ import annotations

from pathlib import Path
from typing import Any, cast

import mlflow
import torch
from peft import PeftModel
from transformers import Trainer

from encore.train import debug, resume
from encore.train.checks import lora_norm, max_change, weight_checksums
from encore.train.lora import export_merged
from playlist.publish import publishing


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
    """Save model and tokenizer as `target`, published whole or not at all (`playlist.publish`);
    `state_dict`: weights gathered from every rank."""
    with publishing(target) as tmp:
        model.save_pretrained(str(tmp), **({"state_dict": state_dict} if state_dict is not None else {}))
        if tokenizer is not None:
            tokenizer.save_pretrained(str(tmp))


def publish_adapter(
    adapters: list[Path], base_model: str, merged: Path | None, *, trust_remote_code: bool = False
) -> None:
    """Log the stage's adapter (the last of `adapters`) as the active run's `adapter` artifacts; with a
    `merged` directory (`<stage>.merge: true`) also write the policy up to it there as merged weights."""
    mlflow.log_artifacts(str(adapters[-1]), "adapter")
    if merged is not None:
        export_merged(base_model, adapters, merged, trust_remote_code=trust_remote_code)
        mlflow.set_tag("encore.merged", str(merged))

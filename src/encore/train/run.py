"""Running a TRL trainer on a LoRA adapter and returning the evidence: losses, adapter moved, base untouched."""

from __future__ import annotations

from pathlib import Path
from typing import Any, cast

import torch
from peft import PeftModel
from transformers import Trainer

from encore.train.checks import lora_norm, max_change, weight_checksums


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
    """Train, save the adapter and tokenizer to `adapter_dir`, and return `train/…` summary metrics."""
    model = cast(PeftModel, trainer.model)
    base_before = weight_checksums(model, lora=False)
    result = trainer.train()
    metrics = {
        "train/final_loss": float(result.training_loss),
        "train/lora_b_norm": lora_norm(model),
        "train/base_max_change": max_change(base_before, weight_checksums(model, lora=False)),
        "train/steps": float(result.global_step),
    }
    model.save_pretrained(str(adapter_dir))
    if trainer.processing_class is not None:
        trainer.processing_class.save_pretrained(str(adapter_dir))
    return metrics

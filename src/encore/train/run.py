"""Running a TRL trainer on a LoRA adapter and returning the evidence: losses, adapter moved, base untouched."""

from __future__ import annotations

from pathlib import Path
from typing import cast

from peft import PeftModel
from transformers import Trainer

from encore.train.checks import lora_norm, max_change, weight_checksums


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

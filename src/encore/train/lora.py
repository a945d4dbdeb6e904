"""LoRA adapters through PEFT: the config, and assembling base + SFT + DPO adapters into one policy."""

from __future__ import annotations

from pathlib import Path

import torch
from peft import LoraConfig, PeftModel
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from encore.models import load_model


def build_lora_config(r: int, alpha: int, dropout: float, targets: list[str] | str) -> LoraConfig:
    """A causal-LM LoRA config; `targets="all-linear"` adapts every linear layer but the LM head."""
    return LoraConfig(
        r=r,
        lora_alpha=alpha,
        lora_dropout=dropout,
        target_modules=targets,
        bias="none",
        task_type="CAUSAL_LM",
    )


def load_policy(
    base_model: str,
    adapters: list[Path],
    *,
    merge_last: bool = False,
    trust_remote_code: bool = False,
    dtype: torch.dtype = torch.float32,
) -> tuple[PreTrainedModel | PeftModel, PreTrainedTokenizerBase]:
    """The base model with `adapters` applied in order (SFT, then DPO).

    Every adapter but the last is merged into the weights, because each stage trained on top of
    the merged result of the stages before it; the last one stays a `PeftModel` unless
    `merge_last` asks for plain weights (for export).
    """
    model: PreTrainedModel | PeftModel
    model, tokenizer = load_model(base_model, dtype=dtype, trust_remote_code=trust_remote_code)
    for i, adapter in enumerate(adapters):
        peft_model = PeftModel.from_pretrained(model, str(adapter))
        last = i == len(adapters) - 1
        model = peft_model if last and not merge_last else peft_model.merge_and_unload()
    return model, tokenizer

"""LoRA/DoRA adapters through PEFT: the config, the weights a stage starts from, and assembling a trained policy."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import torch
from peft import LoraConfig, PeftModel
from transformers import (
    AutoModelForCausalLM,
    AutoModelForSequenceClassification,
    AutoTokenizer,
    PreTrainedModel,
    PreTrainedTokenizerBase,
)

from encore.models import load_model, resolve_model
from encore.train.quantize import bnb_4bit_config


def build_lora_config(
    r: int,
    alpha: int,
    dropout: float,
    target_modules: list[str] | str,
    use_dora: bool = False,
    modules_to_save: list[str] | None = None,
    *,
    task_type: Literal["CAUSAL_LM", "SEQ_CLS"] = "CAUSAL_LM",
) -> LoraConfig:
    """PEFT's config for an adapter (the recipe's `lora:` section, `LoraConfig.adapter_args`);
    `target_modules="all-linear"` adapts every linear layer but the output head.

    With `task_type="SEQ_CLS"` PEFT also trains the new `score` head in full (`modules_to_save`).
    """
    return LoraConfig(
        r=r,
        lora_alpha=alpha,
        lora_dropout=dropout,
        target_modules=target_modules,
        use_dora=use_dora,
        modules_to_save=list(modules_to_save or []) or None,
        bias="none",
        task_type=task_type,
    )


def load_policy(
    base_model: str,
    adapters: list[Path],
    *,
    merge_last: bool = False,
    trust_remote_code: bool = False,
    dtype: torch.dtype = torch.float32,
) -> tuple[PreTrainedModel | PeftModel, PreTrainedTokenizerBase]:
    """The base model with `adapters` applied in order (SFT, then the preference stage).

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


def export_merged(
    base_model: str, adapters: list[Path], out_dir: Path, *, trust_remote_code: bool = False
) -> Path:
    """Write base + `adapters` as one merged model (safetensors) with its tokenizer into `out_dir`."""
    model, tokenizer = load_policy(base_model, adapters, merge_last=True, trust_remote_code=trust_remote_code)
    model.save_pretrained(str(out_dir), safe_serialization=True)
    tokenizer.save_pretrained(str(out_dir))
    return out_dir


def load_start_model(
    base_model: str,
    adapters: list[Path],
    *,
    quantize: Literal["none", "4bit"] = "none",
    merged_dir: Path | None = None,
    trust_remote_code: bool = False,
) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """The weights a training stage starts from: the base with the earlier stages' `adapters` merged in.

    For QLoRA (`quantize="4bit"`) the merged model is written to `merged_dir` first and reloaded in
    4 bits, because an adapter cannot be merged into quantised weights without loss. The CUDA check
    runs before bitsandbytes is imported.
    """
    if quantize == "none":
        model, tokenizer = load_policy(
            base_model, adapters, merge_last=True, trust_remote_code=trust_remote_code
        )
        return model, tokenizer  # type: ignore[return-value]  # merge_last: never a PeftModel
    quantization_config = bnb_4bit_config()
    path = resolve_model(base_model)
    if adapters:
        if merged_dir is None:
            raise ValueError("QLoRA on top of earlier adapters needs a merged_dir to write the merged base")
        path = str(export_merged(base_model, adapters, merged_dir, trust_remote_code=trust_remote_code))
    model = AutoModelForCausalLM.from_pretrained(
        path,
        quantization_config=quantization_config,
        dtype=torch.bfloat16,
        use_safetensors=True,
        trust_remote_code=trust_remote_code,
    )
    tokenizer = AutoTokenizer.from_pretrained(path, trust_remote_code=trust_remote_code)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return model, tokenizer


def load_reward_backbone(
    base_model: str, *, quantize: Literal["none", "4bit"] = "none", trust_remote_code: bool = False
) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """The base model with a fresh one-output `score` head (`AutoModelForSequenceClassification`), offline.

    transformers builds the head from the causal LM's checkpoint (the LM head is left out), so any
    local or builtin base works without a hub.
    """
    path = resolve_model(base_model)
    quantized: dict[str, Any] = (
        {"quantization_config": bnb_4bit_config(), "dtype": torch.bfloat16} if quantize == "4bit" else {}
    )
    model = AutoModelForSequenceClassification.from_pretrained(
        path,
        num_labels=1,
        use_safetensors=True,
        trust_remote_code=trust_remote_code,
        **({"dtype": torch.float32} | quantized),
    )
    tokenizer = AutoTokenizer.from_pretrained(path, trust_remote_code=trust_remote_code)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    model.config.pad_token_id = tokenizer.pad_token_id  # the head reads the last non-pad token
    return model, tokenizer


def load_reward_model(
    base_model: str, adapter: Path, *, trust_remote_code: bool = False
) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """The trained reward model: the backbone with the reward adapter (and its trained head) merged in."""
    backbone, tokenizer = load_reward_backbone(base_model, trust_remote_code=trust_remote_code)
    model = PeftModel.from_pretrained(backbone, str(adapter)).merge_and_unload()
    model.eval()
    return model, tokenizer

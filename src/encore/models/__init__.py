"""Offline base models: ``builtin:tiny``, ``builtin:smollm2-135m``, or any local path / hub id, resolved and loaded.

Example::

    >>> model, tokenizer = load_model("builtin:tiny")   # built once, then cached under cache_dir()
    >>> resolve_model("HuggingFaceTB/SmolLM2-135M-Instruct")  # anything else passes through
    'HuggingFaceTB/SmolLM2-135M-Instruct'
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, PreTrainedModel, PreTrainedTokenizerBase

from encore.models.cache import build_once, cache_dir
from encore.models.smollm2 import SMOLLM2_VERSION, build_smollm2
from encore.models.tiny import TINY_VERSION, build_tiny

__all__ = ["BUILTIN_MODELS", "cache_dir", "load_model", "resolve_model"]

BUILTIN_MODELS = {"builtin:tiny": TINY_VERSION, "builtin:smollm2-135m": SMOLLM2_VERSION}


def resolve_model(name: str, *, corpus: Iterable[str] | None = None) -> str:
    """The local directory of a builtin model (built and cached on first use), or ``name`` unchanged.

    Args:
        name: ``builtin:tiny``, ``builtin:smollm2-135m``, a local path or a hub id.
        corpus: Tokenizer corpus for building ``builtin:tiny`` (tests pass a small one); ignored
            otherwise and once the model is cached.

    Returns:
        A directory with ``config.json``, ``model.safetensors`` and the tokenizer files, or ``name``.

    Raises:
        ValueError: ``name`` starts with ``builtin:`` but is not a builtin model.
    """
    if not name.startswith("builtin:"):
        return name
    if name not in BUILTIN_MODELS:
        raise ValueError(f"unknown builtin model {name!r}; valid names: {', '.join(sorted(BUILTIN_MODELS))}")
    short = name.removeprefix("builtin:")
    target = cache_dir() / "models" / f"{short}-{BUILTIN_MODELS[name]}"
    if name == "builtin:tiny":
        build_once(target, lambda out: build_tiny(out, corpus))
    else:
        build_once(target, build_smollm2)
    return str(target)


def load_model(
    path_or_name: str, *, dtype: torch.dtype = torch.float32, trust_remote_code: bool = False
) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """Load a causal LM and its tokenizer from a builtin name, a local path or a hub id.

    Only safetensors weights are loaded. A tokenizer without a pad token gets its eos token as pad
    (padding side is left to callers: left for generation, right for training).

    Args:
        path_or_name: Anything :func:`resolve_model` accepts.
        dtype: Dtype of the model weights.
        trust_remote_code: Passed to transformers, for hub models with custom code.

    Returns:
        The model and its tokenizer.
    """
    path = resolve_model(path_or_name)
    model = AutoModelForCausalLM.from_pretrained(
        path, dtype=dtype, use_safetensors=True, trust_remote_code=trust_remote_code
    )
    tokenizer = AutoTokenizer.from_pretrained(path, trust_remote_code=trust_remote_code)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    if model.generation_config.pad_token_id is None:
        model.generation_config.pad_token_id = tokenizer.pad_token_id
    return model, tokenizer

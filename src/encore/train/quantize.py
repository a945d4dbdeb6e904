"""QLoRA's 4-bit base: the CUDA check that runs before bitsandbytes is ever imported, and its BitsAndBytesConfig.

bitsandbytes' 4-bit kernels need a CUDA GPU. On a machine without one, a `lora.quantize: 4bit`
recipe fails when it is loaded (`encore validate` included), with one line that says so, and
nothing imports bitsandbytes.
"""

from __future__ import annotations

import importlib.util
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from transformers import BitsAndBytesConfig


def cuda_error() -> str | None:
    """Why 4-bit QLoRA cannot run here (no CUDA GPU, or bitsandbytes missing), or None when it can."""
    import torch

    if not torch.cuda.is_available():
        return (
            "QLoRA needs a CUDA GPU (bitsandbytes 4-bit kernels) and this machine has none; "
            "set lora.quantize=none to train plain LoRA here"
        )
    if importlib.util.find_spec("bitsandbytes") is None:
        return "QLoRA needs the bitsandbytes package: pip install bitsandbytes"
    return None


def bnb_4bit_config() -> BitsAndBytesConfig:
    """NF4 weights with double quantisation and bf16 compute, as in the QLoRA paper.

    Raises:
        RuntimeError: this machine cannot run QLoRA (see :func:`cuda_error`), before any bitsandbytes import.
    """
    problem = cuda_error()
    if problem:
        raise RuntimeError(problem)
    import torch
    from transformers import BitsAndBytesConfig

    return BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_quant_type="nf4",
        bnb_4bit_use_double_quant=True,
        bnb_4bit_compute_dtype=torch.bfloat16,
    )

"""Evidence that adapter training did what it should: LoRA weights moved, base weights did not."""

from __future__ import annotations

import math

from torch import nn


def weight_checksums(model: nn.Module, *, lora: bool) -> dict[str, tuple[float, float]]:
    """Per-parameter (sum, sum of squares) in float64, for the LoRA or for the base parameters.

    Two sums per tensor are enough to see any change and cost no second copy of the model.
    """
    sums = {}
    for name, param in model.named_parameters():
        # A head PEFT trains in full (`modules_to_save`, e.g. a reward model's score) is a trained copy:
        # part of the adapter; its frozen `original_module` stays a base weight.
        if ("lora_" in name or ".modules_to_save." in name) != lora:
            continue
        p = param.detach().double()
        sums[name] = (p.sum().item(), p.square().sum().item())
    return sums


def max_change(before: dict[str, tuple[float, float]], after: dict[str, tuple[float, float]]) -> float:
    """Largest absolute difference between two checksum maps of the same parameters."""
    if before.keys() != after.keys():
        raise ValueError("checksums of different parameter sets")
    return max((abs(a - b) for k in before for a, b in zip(before[k], after[k], strict=True)), default=0.0)


def lora_norm(model: nn.Module) -> float:
    """L2 norm of all `lora_B` weights: zero at initialisation, so > 0 means the adapter trained."""
    # Summed as Python floats: the parameters may sit on an accelerator (or several).
    total = sum(
        param.detach().double().square().sum().item()
        for name, param in model.named_parameters()
        if "lora_B" in name
    )
    return math.sqrt(total)

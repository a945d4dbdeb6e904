"""One entry per stage (prep, sft, dpo, kto, orpo, simpo, reward, grpo, eval, register, export), each a `main(recipe, ...)`."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from encore.config import Recipe


def run_stage(recipe: Recipe, stage: str) -> Any:
    """Run one stage's `main(recipe)`, its module imported only now (orpo and simpo import trl.experimental).

    `eval` lives in evaluate.py; every other stage in the module of its name.
    """
    module = importlib.import_module(f"encore.stages.{'evaluate' if stage == 'eval' else stage}")
    return module.main(recipe)

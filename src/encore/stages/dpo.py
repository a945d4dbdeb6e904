"""DPO stage: a fresh LoRA adapter on the SFT-merged model, trained on preference pairs with TRL's DPOTrainer.

The SFT adapter is merged into the weights first, so the reference policy is exactly the SFT
model and TRL computes it by disabling the DPO adapter: no second copy of the model in memory.
TRL's loss variants (`dpo.args.loss_type`: sigmoid, ipo, robust, hinge, …) and
`precompute_ref_log_probs` are DPOConfig options.
"""

from __future__ import annotations

from pathlib import Path

from trl import DPOTrainer

from encore.config import Recipe
from encore.stages.preference import PreferenceStage, train
from encore.train.data import preference_pairs

STAGE = PreferenceStage("dpo", "pairs", preference_pairs, DPOTrainer)


def main(recipe: Recipe) -> Path:
    """Train the DPO adapter on top of the SFT model (the base when SFT is disabled); returns `<out>/dpo/adapter`."""
    return train(recipe, STAGE)

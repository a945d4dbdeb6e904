"""ORPO stage: odds-ratio preference optimisation, reference-free, with `trl.experimental.orpo.ORPOTrainer`.

ORPO adds an odds-ratio preference term to the SFT loss on the chosen answer, so it needs no
reference model and can replace SFT (`sft.enabled: false`: it then trains on the base). With SFT
enabled it trains a fresh adapter on the SFT-merged model, like the other preference stages.
TRL keeps ORPO in `trl.experimental`; the API used here is pinned by tests/unit/test_trl_api.py.
"""

from __future__ import annotations

import os
from pathlib import Path

from encore.config import Recipe
from encore.stages.preference import PreferenceStage, train
from encore.train.data import preference_pairs

os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")  # known and pinned; the warning says nothing new
from trl.experimental.orpo import ORPOTrainer

STAGE = PreferenceStage(
    "orpo",
    "pairs",
    preference_pairs,
    ORPOTrainer,
    # TRL's preference collator reads every column: keep them (TRL would say so and do it anyway).
    defaults={"remove_unused_columns": False},
    reference=False,
)


def main(recipe: Recipe) -> Path:
    """Train the ORPO adapter on top of the SFT model (the base when SFT is disabled); returns `<out>/orpo/adapter`."""
    return train(recipe, STAGE)

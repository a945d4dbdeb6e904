"""SimPO stage: simple, reference-free preference optimisation with `trl.experimental.cpo.CPOTrainer`.

TRL implements SimPO as CPOTrainer with `loss_type="simpo"`: a length-normalised log-likelihood
margin (`beta`, target margin `simpo_gamma`) and no reference model. encore pins `loss_type` to
`simpo` (encore.methods) and sets `cpo_alpha: 0` (pure SimPO; a positive `simpo.args.cpo_alpha` adds CPO's
behaviour-cloning term, "CPO-SimPO"). TRL keeps CPO in `trl.experimental`; the API used here is
pinned by tests/unit/test_trl_api.py.
"""

from __future__ import annotations

import os
from pathlib import Path

from encore.config import Recipe
from encore.stages.preference import PreferenceStage, train
from encore.train.data import preference_pairs

os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")  # known and pinned; the warning says nothing new
from trl.experimental.cpo import CPOTrainer

STAGE = PreferenceStage(
    "simpo",
    "pairs",
    preference_pairs,
    CPOTrainer,
    # Pure SimPO unless the recipe asks for CPO's behaviour-cloning term (cpo_alpha > 0);
    # TRL's preference collator reads every column: keep them.
    defaults={"remove_unused_columns": False, "cpo_alpha": 0.0},
    reference=False,
)


def main(recipe: Recipe) -> Path:
    """Train the SimPO adapter on top of the SFT model (the base when SFT is disabled); returns `<out>/simpo/adapter`."""
    return train(recipe, STAGE)

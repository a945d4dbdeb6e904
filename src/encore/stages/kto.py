"""KTO stage: a fresh LoRA adapter on the SFT-merged model, trained on unpaired thumbs with TRL's KTOTrainer.

KTO needs no pairs: each row is one response labelled desirable or not (`prepared/unpaired`).
As for DPO, the reference is the SFT-merged model with the KTO adapter disabled (no second copy).
KTO estimates its KL term from the other rows of a batch, so `per_device_train_batch_size` must be > 1.
"""

from __future__ import annotations

from pathlib import Path

from datasets import Dataset
from trl import KTOTrainer

from encore.config import Recipe
from encore.stages.preference import PreferenceStage, train
from encore.train.data import unpaired_for_kto


def _desirable_fraction(rows: Dataset) -> dict[str, float]:
    return {"train/desirable_fraction": sum(rows["label"]) / len(rows)}


STAGE = PreferenceStage("kto", "unpaired", unpaired_for_kto, KTOTrainer, metrics=_desirable_fraction)


def main(recipe: Recipe) -> Path:
    """Train the KTO adapter on top of the SFT model (the base when SFT is disabled); returns `<out>/kto/adapter`."""
    return train(recipe, STAGE)

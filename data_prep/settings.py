"""The data_prep job's settings: rewards, pair strategies and exports, typed, with defaults.

A recipe's ``prep:`` section extends these (``encore.config.PrepConfig``); ``spark-submit
data_prep/job.py --config prep.json`` reads the same model from a JSON or YAML file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator

# Weight of each event in a track's or a response's reward. A plain `skip` is split by how much of the
# track played (`skip_early` / `skip_late`); MSSD's labels carry that split themselves.
DEFAULT_WEIGHTS: dict[str, float] = {
    "play": 0.0,
    "complete": 1.0,
    "save": 2.0,
    "like": 1.5,
    "skip_early": -1.0,
    "skip_late": -0.25,
    "skip_1": -1.0,  # MSSD: played very briefly
    "skip_2": -0.75,  # briefly
    "skip_3": -0.25,  # most of the track played
    "dislike": -2.0,
    "remove": -2.0,
    # Explicit thumbs replace the implicit score of the response: ±track_clip puts a thumbed playlist
    # above (or below) any playlist judged from implicit signals alone.
    "thumbs_up": 3.0,
    "thumbs_down": -3.0,
    "refine": 0.0,  # a refinement asks for more; it does not say the playlist was bad
}
Strategy = Literal["response", "edit", "refinement", "liked_disliked"]
EditRejected = Literal["shown", "truncated"]
STRATEGIES: tuple[Strategy, ...] = ("response", "edit", "refinement", "liked_disliked")


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RewardSettings(_Section):
    """How feedback events become rewards (docs/architecture.md, "Rewards")."""

    # Overrides of DEFAULT_WEIGHTS, by event name; names outside it are errors.
    weights: dict[str, float] = Field(default_factory=dict)
    early_skip: float = Field(0.25, gt=0, lt=1)  # a skip before this fraction of the track is early
    track_clip: float = Field(3.0, gt=0)  # bound on the absolute reward of one track and of a response
    # `ipw`: weight each track's reward by 1 / examination propensity of its position (estimated from
    # the logs); `none`: every position counts alike (right for logs without positions, e.g. CPCD).
    position_bias: Literal["ipw", "none"] = "ipw"
    max_ipw: float = Field(10.0, ge=1)  # clip on 1/propensity: rarely examined positions stay bounded
    min_position_support: int = Field(20, ge=1)  # fewer shown tracks at a position: reuse the last estimate

    @field_validator("weights")
    @classmethod
    def _known_events(cls, value: dict[str, float]) -> dict[str, float]:
        unknown = sorted(set(value) - set(DEFAULT_WEIGHTS))
        if unknown:
            raise ValueError(f"unknown event weight(s) {unknown}; known: {sorted(DEFAULT_WEIGHTS)}")
        return value

    def resolved_weights(self) -> dict[str, float]:
        return {**DEFAULT_WEIGHTS, **self.weights}


class PairSettings(_Section):
    """Which pair strategies run, and the caps on what they produce."""

    strategies: list[Strategy] = Field(default_factory=lambda: list(STRATEGIES))
    min_margin: float = Field(0.3, ge=0)  # response and edit pairs: smallest reward gap that pairs
    # Edit pairs' rejected side: the playlist as `shown`, or `truncated` to the chosen's length so that
    # chosen and rejected never differ in length (docs/data-prep.md, "Edit pairs and length").
    edit_rejected: EditRejected = "shown"
    max_per_prompt: int = Field(4, ge=1)
    max_per_user: int = Field(200, ge=1)


class PrepSettings(_Section):
    """Everything the job decides besides its inputs, outputs and the hash key."""

    rewards: RewardSettings = Field(default_factory=RewardSettings)
    pairs: PairSettings = Field(default_factory=PairSettings)
    eval_fraction: float = Field(0.2, gt=0, lt=1)
    sft_min_reward: float = 0.3  # the best response of a prompt is an SFT example from this reward up
    # KTO rows: a response is desirable from `unpaired_min_reward`, undesirable up to `unpaired_max_reward`.
    unpaired_min_reward: float = 0.5
    unpaired_max_reward: float = -0.5
    max_request_chars: int = Field(500, gt=0)
    mask_pii: bool = True  # e-mail addresses and phone numbers in requests become [email] / [phone]
    # Training prompts (split `train`) show their candidates in a seeded order, so that a model cannot
    # learn to score by position (retrieval order puts the likeliest fits first); eval prompts keep the
    # logged order, which is what a served model sees.
    shuffle_train_candidates: bool = True
    # SFT training rows written this many times, each copy with its candidates in another seeded order
    # (data_prep.render.reshuffled_copies): for a small model trained from scratch (builtin:tiny).
    sft_shuffles: int = Field(1, ge=1)


def load_settings(path: str | Path) -> PrepSettings:
    """Read settings from a JSON or YAML file (JSON is YAML)."""
    return PrepSettings.model_validate(yaml.safe_load(Path(path).read_text()) or {})

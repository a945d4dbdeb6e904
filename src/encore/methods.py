"""The training methods, declared once: each stage's CLI command, recipe section, TRL config and place in the chain.

Everything that lists the methods reads :data:`METHODS`: the `encore train <stage>` commands
(`encore.cli`), the recipe's training sections and its `preference:` and `eval.models` choices
(`encore.config`), the pipeline's stage order (`encore.pipeline`), the TRL config class that checks a
section's `args:` (`encore.train.trl_config`), and the β the eval reads a policy's implicit reward with
(`encore.stages.evaluate`). Adding a method is its stage file, `encore/stages/<name>.py` with a
`main(recipe)`, and one line here.

This module imports nothing heavy (no TRL, no torch): `encore validate` and `--help` read it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class TrainStageConfig(BaseModel):
    """A training stage's recipe section."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    enabled: bool = True
    # Passed as is into the stage's TRL config dataclass (SFTConfig, DPOConfig, …): every TRL option
    # works, unknown keys are errors.
    args: dict[str, Any] = Field(default_factory=dict)
    # Also write the policy up to this stage as merged full weights (safetensors) to `<out>/<stage>/merged`.
    merge: bool = False


class GrpoRewardWeights(BaseModel):
    """Weights of GRPO's reward functions (TRL's `reward_weights`); a zero weight drops the function."""

    model_config = ConfigDict(extra="forbid")

    reward_model: float = Field(1.0, ge=0)  # the `reward` stage's model (used when `reward.enabled`)
    format: float = Field(1.0, ge=0)  # 1 when every line parses and no track repeats
    grounded: float = Field(1.0, ge=0)  # fraction of lines naming a candidate or catalog track
    distinct_artists: float = Field(0.5, ge=0)  # fraction of lines whose artist is not repeated
    length: float = Field(0.5, ge=0)  # closeness to the length the request asks for ("8 songs")


class GrpoStageConfig(TrainStageConfig):
    rewards: GrpoRewardWeights = Field(default_factory=GrpoRewardWeights)


@dataclass(frozen=True)
class Method:
    """One training stage.

    Attributes:
        name: the stage: its module `encore.stages.<name>`, its recipe section, `encore train <name>`,
            and, for a policy stage, its model's name in `eval.models` and the metrics.
        summary: the help of `encore train <name>`.
        trl_config: the dotted path of the TRL config dataclass its `args:` go into.
        preference: the recipe's `preference:` value whose final policy this stage trains, if any.
        trained_first: stages the pipeline trains before this one for its `preference` (when enabled).
        implicit_beta: `args.beta` is β of the implicit reward β·log(π/π_ref) (the DPO family), which the
            eval's preference accuracy reads; otherwise TRL's DPO default scales the margins.
        pinned: TRL args the stage fixes; a recipe that sets another value is an error.
        policy: the stage trains an adapter of the policy (the reward model does not).
        section: the recipe section's model.
    """

    name: str
    summary: str
    trl_config: str
    preference: str | None = None
    trained_first: tuple[str, ...] = ()
    implicit_beta: bool = False
    pinned: Mapping[str, Any] = field(default_factory=dict)
    policy: bool = True
    section: type[TrainStageConfig] = TrainStageConfig


# One line per method (ruff format leaves them so).
# fmt: off
METHODS: tuple[Method, ...] = (
    Method("sft", "Train the SFT adapter (needs the prep outputs).", "trl.SFTConfig"),
    Method("dpo", "Train the DPO adapter on top of the SFT adapter (loss variants: dpo.args.loss_type).", "trl.DPOConfig", preference="dpo", implicit_beta=True),
    Method("kto", "Train the KTO adapter on the unpaired rows, on top of the SFT adapter.", "trl.KTOConfig", preference="kto", implicit_beta=True),
    Method("orpo", "Train the ORPO adapter (reference-free; on the base when sft.enabled is false).", "trl.experimental.orpo.ORPOConfig", preference="orpo", implicit_beta=True),
    Method("simpo", "Train the SimPO adapter (TRL's CPOTrainer with loss_type simpo; reference-free).", "trl.experimental.cpo.CPOConfig", preference="simpo", implicit_beta=True, pinned={"loss_type": "simpo"}),
    Method("reward", "Train the reward model (sequence-classification head + LoRA) on the preference pairs.", "trl.RewardConfig", policy=False),
    Method("grpo", "Train the GRPO adapter against the reward model and the programmatic rewards (grpo.rewards).", "trl.GRPOConfig", preference="rlhf", trained_first=("reward",), section=GrpoStageConfig),
)
# fmt: on

BY_NAME: dict[str, Method] = {m.name: m for m in METHODS}
TRAIN_STAGES: tuple[str, ...] = tuple(BY_NAME)
# The recipe's `preference:` choices, each with the stage whose adapter is its final policy.
PREFERENCE_STAGE: dict[str, str] = {m.preference: m.name for m in METHODS if m.preference}
# The models `eval.models` may name: the base, every policy stage, and `preference` (the recipe's own).
EVAL_MODELS: tuple[str, ...] = ("base", "preference", *(m.name for m in METHODS if m.policy))


def method(name: str) -> Method:
    """The method of stage `name`; KeyError names the known ones."""
    try:
        return BY_NAME[name]
    except KeyError:
        raise KeyError(f"no training stage {name!r}; known: {', '.join(TRAIN_STAGES)}") from None

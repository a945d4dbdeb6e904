"""Each training stage's TRL config dataclass, and checking a recipe's `args:` block against it, key by key.

`encore.config.load_recipe` calls :func:`check_trl_args` for every non-empty block, so an unknown
or wrongly typed TRL option fails when the recipe loads, naming the file, the key and the TRL class.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any

from pydantic import TypeAdapter, ValidationError

from encore.config import RecipeError

# Keys of an `args:` block that encore sets itself, with where to say it instead.
_RESERVED = {
    "output_dir": "use output_dir at the top level",
    "seed": "use seed at the top level",
    "report_to": "encore logs to MLflow itself, through the tracking section",
    "reward_weights": "use grpo.rewards",
}
# TRL fields typed `list[str]` whose `__post_init__` also takes one string (DPOConfig.loss_type).
_STR_AS_LIST = {("dpo", "loss_type")}


def _trl_config_class(stage: str) -> type:
    """The TRL config dataclass of a training stage (ORPO and SimPO live in `trl.experimental`)."""
    if stage in ("orpo", "simpo"):
        os.environ.setdefault(
            "TRL_EXPERIMENTAL_SILENCE", "1"
        )  # pinned and tested: tests/unit/test_trl_api.py
        from trl.experimental.cpo import CPOConfig
        from trl.experimental.orpo import ORPOConfig

        return ORPOConfig if stage == "orpo" else CPOConfig
    from trl import DPOConfig, GRPOConfig, KTOConfig, RewardConfig, SFTConfig

    classes = {
        "sft": SFTConfig,
        "dpo": DPOConfig,
        "kto": KTOConfig,
        "reward": RewardConfig,
        "grpo": GRPOConfig,
    }
    return classes[stage]


def check_trl_args(stage: str, args: dict[str, Any], source: str) -> dict[str, Any]:
    """Unknown keys and wrongly typed values of an `args:` block, named with file and key.

    Returns:
        The values given as strings that the check read as another type (``"2e-4"`` → 0.0002,
        ``"true"`` → True), to replace in the block: TRL takes its values as they are, so a string
        learning rate passed this check and then failed when the trainer built its optimizer.
    """
    cls = _trl_config_class(stage)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    coerced: dict[str, Any] = {}
    for key, value in args.items():
        if key in _RESERVED:
            raise RecipeError(f"{source}: {stage}.args.{key} is set by encore ({_RESERVED[key]})")
        if stage == "simpo" and key == "loss_type" and value != "simpo":
            raise RecipeError(
                f"{source}: simpo.args.loss_type={value!r}: the simpo stage is CPOTrainer with loss_type 'simpo'"
            )
        if (stage, key) in _STR_AS_LIST and isinstance(value, str):
            value = [value]
        if key not in fields:
            raise RecipeError(
                f"{source}: unknown key {stage}.args.{key} (not an option of trl.{cls.__name__})"
            )
        annotation = fields[key].type
        if isinstance(annotation, str):
            continue  # forward references: left to the dataclass itself
        try:
            checked = TypeAdapter(annotation).validate_python(value, strict=False)
        except ValidationError as err:
            msg = err.errors()[0]["msg"]
            raise RecipeError(f"{source}: {stage}.args.{key}={value!r}: {msg}") from None
        except Exception:  # pydantic cannot build a validator for some exotic annotations
            continue
        if isinstance(value, str) and not isinstance(checked, str):
            coerced[key] = checked
    return coerced

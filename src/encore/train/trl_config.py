"""Each training stage's TRL config dataclass (as encore.methods declares it) and the check of a recipe's `args:` against it.

`encore.config.load_recipe` calls :func:`check_trl_args` for every non-empty block, so an unknown
or wrongly typed TRL option fails when the recipe loads, naming the file, the key and the TRL class.
"""

from __future__ import annotations

import dataclasses
import importlib
import os
from typing import Any

from pydantic import TypeAdapter, ValidationError

from encore.errors import RecipeError
from encore.methods import method

# Keys of an `args:` block that encore sets itself, with where to say it instead.
_RESERVED = {
    "output_dir": "use output_dir at the top level",
    "seed": "use seed at the top level",
    "report_to": "encore logs to MLflow itself, through the tracking section",
    "reward_weights": "use grpo.rewards",
}
# TRL fields typed `list[str]` whose `__post_init__` also takes one string (DPOConfig.loss_type).
_STR_AS_LIST = {("dpo", "loss_type")}


def trl_config_class(stage: str) -> type:
    """The TRL config dataclass of a training stage, as `encore.methods` declares it.

    ORPO and CPO (SimPO) live in `trl.experimental`, whose import warning is known and pinned
    (tests/unit/test_trl_api.py).
    """
    module, _, name = method(stage).trl_config.rpartition(".")
    if module.startswith("trl.experimental"):
        os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")
    return getattr(importlib.import_module(module), name)


def trl_default(stage: str, key: str) -> Any:
    """The default of `key` in the stage's TRL config dataclass (``trl_default("dpo", "beta")`` → 0.1)."""
    return {f.name: f.default for f in dataclasses.fields(trl_config_class(stage))}[key]


def check_trl_args(stage: str, args: dict[str, Any], source: str) -> dict[str, Any]:
    """Unknown keys and wrongly typed values of an `args:` block, named with file and key.

    Returns:
        The values given as strings that the check read as another type (``"2e-4"`` → 0.0002,
        ``"true"`` → True), to replace in the block: TRL takes its values as they are, so a string
        learning rate passed this check and then failed when the trainer built its optimizer.
    """
    cls = trl_config_class(stage)
    pinned = method(stage).pinned
    fields = {f.name: f for f in dataclasses.fields(cls)}
    coerced: dict[str, Any] = {}
    for key, value in args.items():
        if key in _RESERVED:
            raise RecipeError(f"{source}: {stage}.args.{key} is set by encore ({_RESERVED[key]})")
        if key in pinned and value != pinned[key]:
            raise RecipeError(
                f"{source}: {stage}.args.{key}={value!r}: the {stage} stage pins {key} to "
                f"{pinned[key]!r} (trl.{cls.__name__}; encore.methods)"
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

"""The TRL API the training stages use, pinned: a TRL upgrade that moves or changes it fails here first.

ORPO and CPO (SimPO) live in `trl.experimental`, which TRL may change in any release; checked with
TRL 1.16.0. The stable trainers are checked for the arguments the stages pass.
"""

from __future__ import annotations

import dataclasses
import inspect
import os

import pytest

os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")


def _fields(cls: type) -> dict[str, dataclasses.Field]:
    return {f.name: f for f in dataclasses.fields(cls)}


def _init_params(cls: type) -> set[str]:
    return set(inspect.signature(cls.__init__).parameters)


def test_orpo_is_trl_experimental_orpo_with_beta() -> None:
    from trl.experimental.orpo import ORPOConfig, ORPOTrainer

    assert {"beta", "max_length", "disable_dropout"} <= set(_fields(ORPOConfig))
    assert {"model", "args", "train_dataset", "processing_class", "peft_config", "callbacks"} <= _init_params(
        ORPOTrainer
    )


def test_simpo_is_cpo_with_loss_type_simpo() -> None:
    from trl.experimental.cpo import CPOConfig, CPOTrainer

    fields = _fields(CPOConfig)
    assert "simpo" in fields["loss_type"].metadata["choices"]
    assert {"cpo_alpha", "simpo_gamma", "beta"} <= set(fields)
    config = CPOConfig(
        output_dir="unused", report_to="none", use_cpu=True, bf16=False, loss_type="simpo", cpo_alpha=0.0
    )
    assert (config.loss_type, config.cpo_alpha) == ("simpo", 0.0)
    assert {"model", "args", "train_dataset", "processing_class", "peft_config", "callbacks"} <= _init_params(
        CPOTrainer
    )


@pytest.mark.parametrize(
    ("trainer", "extra"),
    [
        ("DPOTrainer", {"ref_model"}),
        ("KTOTrainer", {"ref_model"}),
        ("RewardTrainer", set()),
        ("GRPOTrainer", {"reward_funcs", "reward_processing_classes"}),
        ("SFTTrainer", set()),
    ],
)
def test_stable_trainers_take_what_the_stages_pass(trainer: str, extra: set[str]) -> None:
    import trl

    params = _init_params(getattr(trl, trainer))
    assert {
        "model",
        "args",
        "train_dataset",
        "processing_class",
        "peft_config",
        "callbacks",
    } | extra <= params


def test_config_options_the_recipes_rely_on() -> None:
    from trl import DPOConfig, GRPOConfig, KTOConfig, SFTConfig

    assert {"packing", "padding_free", "gradient_checkpointing"} <= set(_fields(SFTConfig))
    assert {"precompute_ref_log_probs", "loss_type"} <= set(_fields(DPOConfig))
    assert {"precompute_ref_log_probs", "desirable_weight", "undesirable_weight"} <= set(_fields(KTOConfig))
    assert {"reward_weights", "num_generations", "max_completion_length", "beta"} <= set(_fields(GRPOConfig))

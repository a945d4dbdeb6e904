"""The training methods are declared once (`encore.methods.METHODS`); everything that lists them follows."""

from __future__ import annotations

import dataclasses
import importlib.util
from pathlib import Path

import pytest
from typer.main import get_command

from encore.cli import app
from encore.config import Recipe, RecipeError, load_recipe
from encore.methods import EVAL_MODELS, METHODS, PREFERENCE_STAGE, TRAIN_STAGES, method
from encore.train.trl_config import trl_config_class, trl_default

SMOKE = Path(__file__).resolve().parents[2] / "recipes" / "smoke" / "pipeline.yaml"


@pytest.mark.parametrize("m", METHODS, ids=lambda m: m.name)
def test_every_method_has_its_stage_section_command_and_trl_config(m) -> None:  # type: ignore[no-untyped-def]
    assert importlib.util.find_spec(f"encore.stages.{m.name}") is not None
    assert m.name in Recipe.model_fields
    assert Recipe.model_fields[m.name].annotation is m.section
    train = get_command(app).commands["train"]  # type: ignore[attr-defined]
    assert train.commands[m.name].help == m.summary
    config = trl_config_class(m.name)
    assert dataclasses.is_dataclass(config) and config.__name__ == m.trl_config.rsplit(".", 1)[1]


def test_the_recipe_choices_follow_the_declaration() -> None:
    assert TRAIN_STAGES == ("sft", "dpo", "kto", "orpo", "simpo", "reward", "grpo")
    assert PREFERENCE_STAGE == {"dpo": "dpo", "kto": "kto", "orpo": "orpo", "simpo": "simpo", "rlhf": "grpo"}
    assert "reward" not in EVAL_MODELS and {"base", "preference", "grpo"} <= set(EVAL_MODELS)
    with pytest.raises(RecipeError, match=r"eval\.models\.0: Input should be 'base', 'preference', 'sft'"):
        load_recipe(SMOKE, ["eval.models=[reward]"])
    with pytest.raises(RecipeError, match="unknown key ppo"):
        load_recipe(SMOKE, ["ppo.enabled=true"])


@pytest.mark.parametrize(
    ("overrides", "chain", "policy"),
    [
        ([], ["dpo"], ["sft", "dpo"]),
        (["preference=kto", "eval.models=[sft]"], ["kto"], ["sft", "kto"]),
        (["preference=rlhf", "eval.models=[sft]"], ["reward", "grpo"], ["sft", "grpo"]),
        (["preference=rlhf", "reward.enabled=false", "eval.models=[sft]"], ["grpo"], ["sft", "grpo"]),
        (["preference=rlhf", "grpo.enabled=false", "eval.models=[sft]"], [], ["sft"]),
        (["preference=orpo", "sft.enabled=false", "eval.models=[orpo]"], ["orpo"], ["orpo"]),
    ],
)
def test_the_pipeline_order_follows_the_declaration(
    overrides: list[str], chain: list[str], policy: list[str]
) -> None:
    recipe = load_recipe(SMOKE, overrides, check_args=False)
    assert recipe.preference_chain() == chain
    assert recipe.policy_stages == policy


def test_the_evals_beta_is_the_methods_own_or_trls_default() -> None:
    recipe = load_recipe(SMOKE, ["dpo.args.beta=0.25", "kto.args.beta=0.5", "grpo.args.beta=0.0"])
    assert recipe.implicit_beta("dpo") == 0.25 and recipe.implicit_beta("kto") == 0.5
    assert method("grpo").implicit_beta is False  # GRPO's beta is a KL weight, not an implicit reward's
    assert recipe.implicit_beta("grpo") == recipe.implicit_beta("sft") == trl_default("dpo", "beta") == 0.1
    assert recipe.implicit_beta("orpo") == trl_default("orpo", "beta")


def test_a_pinned_arg_is_refused_by_name() -> None:
    assert method("simpo").pinned == {"loss_type": "simpo"}
    with pytest.raises(RecipeError, match=r"simpo\.args\.loss_type='sigmoid'.*pins loss_type to 'simpo'"):
        load_recipe(SMOKE, ["simpo.args.loss_type=sigmoid"])

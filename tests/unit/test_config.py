"""Recipes: every shipped recipe parses; wrong keys and types fail early, naming file and key."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from encore.config import RecipeError, load_recipe
from encore.tracking import flat_params, loggable

ROOT = Path(__file__).resolve().parents[2]
# Every recipe (accelerate's launcher configs under recipes/accelerate/ are not recipes).
RECIPES = sorted(p for p in (ROOT / "recipes").rglob("*.yaml") if "accelerate" not in p.parts)
SMOKE = ROOT / "recipes" / "smoke" / "pipeline.yaml"


def test_recipes_exist() -> None:
    assert SMOKE in RECIPES
    for method in ("kto", "orpo", "simpo", "rlhf"):
        assert ROOT / "recipes" / "smoke" / f"{method}.yaml" in RECIPES
    assert ROOT / "recipes" / "smollm2-135m" / "cpu" / "pipeline.yaml" in RECIPES


@pytest.mark.parametrize("path", RECIPES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_recipe_parses_with_its_trl_args(path: Path) -> None:
    recipe = load_recipe(path)
    assert recipe.name
    # Every key the YAML sets is read by the typed config (nothing silently ignored).
    raw = yaml.safe_load(path.read_text())
    dumped = recipe.model_dump(mode="json", by_alias=True)

    def keys(d: dict, prefix: str = "") -> set[str]:
        out = set()
        for k, v in d.items():
            out.add(prefix + k)
            if isinstance(v, dict) and k != "args":
                out |= keys(v, prefix + k + ".")
        return out

    assert keys(raw) <= keys(dumped)


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "recipe.yaml"
    path.write_text(text)
    return path


def test_unknown_top_level_key_names_file_and_key(tmp_path: Path) -> None:
    path = write(tmp_path, "name: x\nbase_model: builtin:tiny\nprep:\n  eval_fractio: 0.1\n")
    with pytest.raises(RecipeError, match=r"recipe\.yaml: unknown key prep\.eval_fractio"):
        load_recipe(path)


def test_wrong_type_names_key(tmp_path: Path) -> None:
    path = write(tmp_path, "name: x\nbase_model: builtin:tiny\nseed: many\n")
    with pytest.raises(RecipeError, match=r"recipe\.yaml: seed: .*integer"):
        load_recipe(path)


def test_sim_replays_below_one_names_key() -> None:
    assert load_recipe(SMOKE, ["eval.sim_replays=64"]).eval.sim_replays == 64
    with pytest.raises(RecipeError, match=r"eval\.sim_replays: .*greater than or equal to 1"):
        load_recipe(SMOKE, ["eval.sim_replays=0"])


def test_max_pairs_defaults_to_max_requests_and_can_be_set_apart() -> None:
    assert load_recipe(SMOKE, ["eval.max_requests=16", "eval.max_pairs=null"]).eval.pair_limit == 16
    assert load_recipe(SMOKE, ["eval.max_requests=null", "eval.max_pairs=null"]).eval.pair_limit is None
    assert load_recipe(SMOKE, ["eval.max_requests=null", "eval.max_pairs=8"]).eval.pair_limit == 8
    assert load_recipe(SMOKE, ["eval.max_requests=16", "eval.max_pairs=0"]).eval.pair_limit == 0
    with pytest.raises(RecipeError, match=r"eval\.max_pairs: .*greater than or equal to 0"):
        load_recipe(SMOKE, ["eval.max_pairs=-1"])


def test_register_floors_hold_only_metrics_with_a_better_side() -> None:
    recipe = load_recipe(SMOKE, ["register.floors={distinct_artist_ratio: 0.4, hallucination_rate: 0.1}"])
    assert recipe.registry.floors == {"distinct_artist_ratio": 0.4, "hallucination_rate": 0.1}
    with pytest.raises(RecipeError, match=r"register\.floors: .*no floor for distinct_artists_ratio"):
        load_recipe(SMOKE, ["register.floors={distinct_artists_ratio: 0.4}"])


def test_unknown_trl_arg_names_key_and_trl_class() -> None:
    with pytest.raises(RecipeError, match=r"unknown key dpo\.args\.betta .*DPOConfig"):
        load_recipe(SMOKE, ["dpo.args.betta=0.1"])


def test_wrongly_typed_trl_arg() -> None:
    with pytest.raises(RecipeError, match=r"sft\.args\.learning_rate='fast'"):
        load_recipe(SMOKE, ["sft.args.learning_rate=fast"])


def test_overrides_use_dotted_keys_and_yaml_values() -> None:
    recipe = load_recipe(SMOKE, ["sft.args.num_train_epochs=3", "eval.models=[base, dpo]", "seed=7"])
    assert recipe.sft.args["num_train_epochs"] == 3
    assert recipe.eval.models == ["base", "dpo"]
    assert recipe.seed == 7


def test_exponent_without_a_dot_is_a_float_in_files_and_overrides(tmp_path: Path) -> None:
    # PyYAML (YAML 1.1) reads 2e-4 as a string; TRL then keeps it and fails only at the optimizer.
    path = write(tmp_path, "name: x\nbase_model: builtin:tiny\nsft:\n  args:\n    learning_rate: 1e-4\n")
    assert load_recipe(path).sft.args["learning_rate"] == 1e-4
    recipe = load_recipe(SMOKE, ["dpo.args.learning_rate=2e-4", "dpo.args.beta=-1E+1", "name=1e3x"])
    assert recipe.dpo.args["learning_rate"] == 2e-4 and recipe.dpo.args["beta"] == -10.0
    assert recipe.name == "1e3x"


def test_trl_args_given_as_strings_reach_trl_as_their_type() -> None:
    recipe = load_recipe(SMOKE, ["dpo.args.learning_rate='2e-4'", "dpo.args.max_steps='3'"])
    assert recipe.dpo.args["learning_rate"] == 2e-4 and recipe.dpo.args["max_steps"] == 3
    # One loss_type string stays as given: TRL takes a string or a list.
    assert load_recipe(SMOKE, ["dpo.args.loss_type=sigmoid"]).dpo.args["loss_type"] == "sigmoid"


def test_malformed_override() -> None:
    with pytest.raises(RecipeError, match=r"section\.key=value"):
        load_recipe(SMOKE, ["seed"])


def test_env_tracking_uri_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    recipe = load_recipe(SMOKE)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    assert recipe.tracking_uri == "sqlite:///mlruns/mlflow.db"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:5999")
    assert recipe.tracking_uri == "http://127.0.0.1:5999"


def test_names_with_path_separators_are_rejected(tmp_path: Path) -> None:
    for bad in ("../x", "a/b", ".hidden"):
        with pytest.raises(RecipeError, match="name"):
            load_recipe(write(tmp_path, f"name: '{bad}'\nbase_model: builtin:tiny\n"))
    with pytest.raises(RecipeError, match=r"register\.name"):
        load_recipe(SMOKE, ["register.name=../../evil"])


def test_missing_log_files_are_named(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "name: x\nbase_model: builtin:tiny\ndata:\n  source: logs\n  logs:\n"
        "    responses: nope.jsonl\n    interactions: nope2.jsonl\n    catalog: nope3.jsonl\n",
    )
    with pytest.raises(RecipeError, match=r"data\.logs\.responses: nope\.jsonl does not exist"):
        load_recipe(path)


def test_hash_key_never_in_params() -> None:
    params = flat_params(load_recipe(SMOKE))
    assert "prep.hash_key" not in params
    assert params["sft.args.learning_rate"] == "0.003"


def test_secret_spark_settings_are_redacted_in_what_is_logged(tmp_path: Path) -> None:
    secret = "s3cr3t-value-0004"
    path = write(
        tmp_path,
        "name: x\nbase_model: builtin:tiny\nprep:\n  spark_conf:\n"
        f"    spark.hadoop.fs.s3a.secret.key: {secret}\n    spark.hadoop.fs.s3a.access.key: {secret}\n"
        "    spark.executor.memory: 4g\n",
    )
    recipe = load_recipe(path)
    assert recipe.prep.spark_conf["spark.hadoop.fs.s3a.secret.key"] == secret  # Spark still gets it
    logged = [*flat_params(recipe).values(), json.dumps(loggable(recipe))]
    assert not any(secret in value for value in logged)
    assert flat_params(recipe)["prep.spark_conf.spark.executor.memory"] == "4g"


def test_bad_recipe_fails_before_spark_or_torch_start(tmp_path: Path) -> None:
    path = write(tmp_path, "name: x\nbase_model: builtin:tiny\nsft:\n  argz: {}\n")
    done = subprocess.run(
        [sys.executable, "-m", "encore.cli", "pipeline", str(path)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=120,
    )
    assert done.returncode == 2
    assert "unknown key sft.argz" in done.stderr
    assert not (tmp_path / "outputs").exists() and not (tmp_path / "mlruns").exists()
    probe = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys\nfrom encore.config import load_recipe, RecipeError\n"
            f"try:\n    load_recipe({str(path)!r})\nexcept RecipeError:\n    pass\n"
            "print('torch' in sys.modules, 'pyspark' in sys.modules)",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert probe.stdout.split() == ["False", "False"]


def test_cpu_precision_default_fills_only_what_the_recipe_leaves_out(monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    from encore.train.run import trl_args

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert trl_args({"learning_rate": 1.0}) == {"bf16": False, "use_cpu": True, "learning_rate": 1.0}
    assert trl_args({"bf16": True})["bf16"] is True
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert trl_args({"learning_rate": 1.0}) == {"learning_rate": 1.0}


# --- the training chain: preference methods, their sections, adapters and memory options ---


def test_preference_defaults_to_dpo_and_names_the_final_stage() -> None:
    recipe = load_recipe(SMOKE)
    assert recipe.preference == "dpo"
    assert recipe.policy_stages == ["sft", "dpo"]
    assert recipe.eval_models == ["base", "sft", "dpo"]
    kto = load_recipe(SMOKE, ["preference=kto", "eval.models=[base, preference]"])
    assert (kto.preference_stage, kto.policy_stages, kto.eval_models) == (
        "kto",
        ["sft", "kto"],
        ["base", "kto"],
    )
    rlhf = load_recipe(SMOKE, ["preference=rlhf", "eval.models=[sft, preference]"])
    assert rlhf.policy_stages == ["sft", "grpo"] and rlhf.adapters_before("grpo") == ["sft"]
    orpo = load_recipe(SMOKE, ["preference=orpo", "sft.enabled=false", "eval.models=[base, preference]"])
    assert orpo.policy_stages == ["orpo"] and orpo.adapters_before("orpo") == []


def test_unknown_preference_method_is_named() -> None:
    with pytest.raises(RecipeError, match=r"preference: .*'dpo', 'kto', 'orpo', 'simpo' or 'rlhf'"):
        load_recipe(SMOKE, ["preference=ppo"])


def test_eval_of_a_model_the_recipe_does_not_train_fails_early() -> None:
    with pytest.raises(
        RecipeError, match=r"eval\.models: 'dpo' is not trained by this recipe \(preference: kto"
    ):
        load_recipe(SMOKE, ["preference=kto"])  # the smoke recipe lists dpo explicitly
    with pytest.raises(RecipeError, match=r"eval\.models: 'sft' is not trained"):
        load_recipe(SMOKE, ["sft.enabled=false"])


@pytest.mark.parametrize(
    ("stage", "trl_class"),
    [
        ("kto", "KTOConfig"),
        ("orpo", "ORPOConfig"),
        ("simpo", "CPOConfig"),
        ("reward", "RewardConfig"),
        ("grpo", "GRPOConfig"),
    ],
)
def test_each_method_checks_its_args_against_its_trl_class(stage: str, trl_class: str) -> None:
    load_recipe(SMOKE, [f"{stage}.args.learning_rate=1.0e-4", f"{stage}.args.max_steps=2"])
    with pytest.raises(RecipeError, match=rf"unknown key {stage}\.args\.betta .*{trl_class}"):
        load_recipe(SMOKE, [f"{stage}.args.betta=0.1"])
    with pytest.raises(RecipeError, match=rf"{stage}\.args\.learning_rate='fast'"):
        load_recipe(SMOKE, [f"{stage}.args.learning_rate=fast"])


def test_method_specific_args_are_accepted() -> None:
    recipe = load_recipe(
        SMOKE,
        [
            "kto.args.desirable_weight=1.5",
            "orpo.args.beta=0.2",
            "simpo.args.simpo_gamma=1.0",
            "reward.args.center_rewards_coefficient=0.01",
            "grpo.args.num_generations=4",
            "grpo.rewards.length=0",
        ],
    )
    assert recipe.kto.args["desirable_weight"] == 1.5 and recipe.grpo.rewards.length == 0


@pytest.mark.parametrize("loss_type", ["sigmoid", "ipo", "robust", "hinge", ["sigmoid", "sft"]])
def test_dpo_loss_variants_pass_through_to_dpo_config(loss_type: str | list[str]) -> None:
    from trl import DPOConfig

    from encore.train.run import trl_args

    value = loss_type if isinstance(loss_type, str) else f"[{', '.join(loss_type)}]"
    recipe = load_recipe(SMOKE, [f"dpo.args.loss_type={value}"])
    config = DPOConfig(output_dir="unused", report_to="none", **trl_args(recipe.dpo.args))
    assert config.loss_type == ([loss_type] if isinstance(loss_type, str) else loss_type)


def test_simpo_loss_type_is_pinned_and_reserved_keys_are_named() -> None:
    load_recipe(SMOKE, ["simpo.args.loss_type=simpo"])
    with pytest.raises(RecipeError, match=r"simpo\.args\.loss_type='sigmoid'.*pins loss_type to 'simpo'"):
        load_recipe(SMOKE, ["simpo.args.loss_type=sigmoid"])
    with pytest.raises(
        RecipeError, match=r"grpo\.args\.reward_weights is set by encore \(use grpo\.rewards\)"
    ):
        load_recipe(SMOKE, ["grpo.args.reward_weights=[1.0]"])
    with pytest.raises(RecipeError, match=r"kto\.args\.output_dir is set by encore"):
        load_recipe(SMOKE, ["kto.args.output_dir=/tmp/x"])


def test_grpo_needs_at_least_one_reward() -> None:
    zero = [f"grpo.rewards.{k}=0" for k in ("format", "grounded", "distinct_artists", "length")]
    base = ["preference=rlhf", "eval.models=[base]"]
    load_recipe(SMOKE, base + zero)  # the reward model is left
    with pytest.raises(RecipeError, match=r"grpo\.rewards: every reward weight is 0"):
        load_recipe(SMOKE, [*base, *zero, "reward.enabled=false"])
    with pytest.raises(RecipeError, match=r"grpo\.rewards\.format: .*greater than or equal to 0"):
        load_recipe(SMOKE, ["grpo.rewards.format=-1"])


def test_memory_options_are_plain_trl_args() -> None:
    recipe = load_recipe(
        SMOKE,
        [
            "sft.args.packing=true",
            "sft.args.padding_free=true",
            "sft.args.gradient_checkpointing=true",
            "dpo.args.precompute_ref_log_probs=true",
            "kto.args.precompute_ref_log_probs=true",
        ],
    )
    assert recipe.sft.args["packing"] is True and recipe.dpo.args["precompute_ref_log_probs"] is True


def test_dora_merge_and_quantize_options() -> None:
    recipe = load_recipe(SMOKE, ["lora.use_dora=true", "dpo.merge=true"])
    assert recipe.lora.use_dora and recipe.dpo.merge and recipe.lora.quantize == "none"
    with pytest.raises(RecipeError, match=r"lora\.quantize: .*'none' or '4bit'"):
        load_recipe(SMOKE, ["lora.quantize=8bit"])
    with pytest.raises(RecipeError, match=r"lora\.use_dora: .*boolean"):
        load_recipe(SMOKE, ["lora.use_dora=maybe"])

    from encore.train.lora import build_lora_config

    assert build_lora_config(**recipe.lora.adapter_args()).use_dora is True
    assert build_lora_config(**recipe.lora.adapter_args(), task_type="SEQ_CLS").task_type == "SEQ_CLS"


class _ImportRecorder:
    """A meta-path finder that records attempted imports of one package and finds nothing itself."""

    def __init__(self, package: str) -> None:
        self.package, self.attempts = package, 0

    def find_spec(self, name: str, path: object = None, target: object = None) -> None:
        if name.split(".")[0] == self.package:
            self.attempts += 1


def test_qlora_without_cuda_fails_at_load_in_one_line_before_importing_bitsandbytes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.delitem(sys.modules, "bitsandbytes", raising=False)
    recorder = _ImportRecorder("bitsandbytes")
    monkeypatch.setattr(sys, "meta_path", [recorder, *sys.meta_path])
    with pytest.raises(RecipeError) as info:
        load_recipe(SMOKE, ["lora.quantize=4bit"])
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"{SMOKE}: lora.quantize=4bit: QLoRA needs a CUDA GPU")
    assert "lora.quantize=none" in message

    from encore.train.quantize import bnb_4bit_config

    with pytest.raises(RuntimeError, match="needs a CUDA GPU"):
        bnb_4bit_config()  # the loader's own guard, for code that skips load_recipe
    assert recorder.attempts == 0


def test_the_hash_key_is_the_environment_s_when_set_else_the_recipe_s(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("ENCORE_HASH_KEY", raising=False)
    assert load_recipe(SMOKE, ["prep.hash_key=mine"]).hash_key == "mine"
    monkeypatch.setenv("ENCORE_HASH_KEY", "from-env")
    assert load_recipe(SMOKE, ["prep.hash_key=mine"]).hash_key == "from-env"

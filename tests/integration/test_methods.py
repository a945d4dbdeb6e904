"""Every preference method's smoke recipe through the real CLI: (SFT) → method → eval, on data prepared once.

The recipes under recipes/smoke/ (kto, orpo, simpo, rlhf; dpo is recipes/smoke/pipeline.yaml, run
end to end by test_pipeline.py) share their `data` and `prep` sections, so the Spark prep runs once
for the module (`encore prep`, in a subprocess) and each method runs its `encore train <stage>`
commands, then `encore eval`, in its own output directory on those prepared rows. The commands run
in this process through the typer app (`CliRunner`), as `encore pipeline` runs its stages one after
the other in one process: a fresh interpreter per command would spend ~10 s of the CI budget each on
imports. What matters is asserted: the stage trained its adapter (LoRA B moved) without touching
the base, the method's own loss terms are finite and logged under stable names, the reference of
DPO and KTO is the adapter-disabled model, and the eval stage scored the method's policy.
"""

from __future__ import annotations

import math
import os
import subprocess
import sys
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from mlflow import MlflowClient

ROOT = Path(__file__).resolve().parents[2]
SMOKE = ROOT / "recipes" / "smoke"
# recipe → the `encore train` stages it runs, in order (the last one's adapter is the final policy)
METHODS = {
    "kto": ["sft", "kto"],
    "orpo": ["orpo"],
    "simpo": ["sft", "simpo"],
    "rlhf": ["sft", "reward", "grpo"],
}
EVAL_REQUESTS = 4  # the smoke recipes' eval.max_requests

pytestmark = pytest.mark.integration


def uri(workdir: Path) -> str:
    return f"sqlite:///{workdir / 'mlflow.db'}"


def store(workdir: Path, method: str) -> list[str]:
    """Overrides that put a method's outputs in its own directory and every run in the module's store."""
    return ["--set", f"output_dir={workdir / method / 'out'}", "--set", f"tracking.uri={uri(workdir)}"]


def encore(args: list[str]) -> str:
    """Run an `encore` command in this process; its output, or an AssertionError with the traceback."""
    from typer.testing import CliRunner

    from encore.cli import app

    result = CliRunner().invoke(app, args)
    if result.exit_code != 0:
        trace = "".join(traceback.format_exception(*result.exc_info)) if result.exc_info else ""
        raise AssertionError(
            f"encore {' '.join(args)} exited {result.exit_code}\n{result.output[-3000:]}\n{trace[-6000:]}"
        )
    return result.output


def runs_by_stage(workdir: Path, method: str) -> dict[str, Any]:
    """The method's runs in the module's store (its recipe's experiment), by `encore.stage` tag."""
    client = MlflowClient(uri(workdir))
    experiment = client.get_experiment_by_name(f"encore-smoke-{method}")
    runs = client.search_runs([experiment.experiment_id], order_by=["attributes.start_time ASC"])
    return {r.data.tags["encore.stage"]: r for r in runs}  # the latest run of a stage wins


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A directory with the prepared data (one `encore prep`), the MLflow store, and this module's cwd."""
    workdir = tmp_path_factory.mktemp("methods")
    with pytest.MonkeyPatch.context() as patch:
        # The stages run in this process, and mlflow.set_tracking_uri/set_registry_uri export both
        # variables: restored when the module ends, so later tests' subprocesses do not inherit them.
        patch.delenv("MLFLOW_TRACKING_URI", raising=False)
        patch.delenv("MLFLOW_REGISTRY_URI", raising=False)
        for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE"):
            patch.setenv(name, "1")  # as the autouse fixture does, for this module-scoped work too
        patch.setenv("ENCORE_CACHE", os.environ.get("ENCORE_CACHE", str(ROOT / ".cache" / "encore")))
        patch.chdir(workdir)  # MLflow puts a new store's artifacts under ./mlruns
        prep = ["prep", str(SMOKE / "kto.yaml"), *store(workdir, "shared")]
        prep += ["--set", "tracking.experiment=encore-smoke-prep"]  # not one of the methods' experiments
        done = subprocess.run(  # Spark in its own process: it leaves no JVM behind in the test process
            [sys.executable, "-m", "encore.cli", *prep],
            cwd=workdir,
            env=dict(os.environ),
            capture_output=True,
            text=True,
            timeout=1800,  # ~1.5 min on 2 quiet cores; > 15 min seen beside other Spark jobs
        )
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-5000:]
        yield workdir


@pytest.fixture(scope="module")
def run_method(workdir: Path) -> Callable[[str], dict[str, Any]]:
    """`run_method(name)`: the method's training stages and eval, run once per module, then shared by its tests."""
    done_runs: dict[str, dict[str, Any]] = {}
    failed: dict[str, str] = {}  # a method that failed fails every test that uses it with its own error

    def run(name: str) -> dict[str, Any]:
        if name in failed:
            pytest.fail(failed[name], pytrace=False)
        if name not in done_runs:
            out = workdir / name / "out"
            out.mkdir(parents=True)
            (out / "prepared").symlink_to(workdir / "shared" / "out" / "prepared")
            (out / "raw").symlink_to(workdir / "shared" / "out" / "raw")  # the simulator's logs and intents
            recipe = str(SMOKE / f"{name}.yaml")
            try:
                for stage in METHODS[name]:
                    encore(["train", stage, recipe, *store(workdir, name)])
                output = encore(["eval", recipe, *store(workdir, name)])
            except AssertionError as error:
                failed[name] = str(error)
                raise
            done_runs[name] = {
                "name": name,
                "out": out,
                "output": output,
                "runs": runs_by_stage(workdir, name),
            }
        return done_runs[name]

    return run


@pytest.fixture(params=sorted(METHODS))
def method(request: pytest.FixtureRequest, run_method: Callable[[str], dict[str, Any]]) -> dict[str, Any]:
    """Each method's stages, for the tests every method must pass."""
    return run_method(request.param)


def test_the_smoke_recipes_share_their_data_and_prep() -> None:
    """Why one prep serves every method: a recipe that drifts apart must get its own prep here."""
    from encore.config import load_recipe

    recipes = [load_recipe(SMOKE / f"{name}.yaml") for name in METHODS]
    assert all(r.data == recipes[0].data and r.prep == recipes[0].prep for r in recipes)
    assert all(r.eval.max_requests == EVAL_REQUESTS for r in recipes)


def test_each_stage_finished_and_moved_its_adapter_and_not_the_base(method: dict[str, Any]) -> None:
    runs = method["runs"]
    assert set(runs) == {*METHODS[method["name"]], "eval"}
    assert all(run.info.status == "FINISHED" for run in runs.values())
    for stage in METHODS[method["name"]]:
        metrics = runs[stage].data.metrics
        assert metrics["train/lora_b_norm"] > 0, stage  # lora_B starts at zero
        assert metrics["train/base_max_change"] == 0.0, stage
        assert math.isfinite(metrics["train/final_loss"]), stage
        assert metrics["train/steps"] >= 1, stage
        assert (method["out"] / stage / "adapter" / "adapter_model.safetensors").exists()


def test_method_logs_its_own_train_metrics_under_stable_names(method: dict[str, Any]) -> None:
    stage = METHODS[method["name"]][-1]
    metrics = method["runs"][stage].data.metrics
    assert math.isfinite(metrics["train/loss"])  # the trainer's own logged loss, via MlflowMetricsCallback
    expected = {
        "kto": "train/kl",
        "orpo": "train/log_odds_ratio",
        "simpo": "train/rewards/margins",
        "rlhf": "train/rewards/reward_model/mean",
    }[method["name"]]
    assert math.isfinite(metrics[expected])


def test_eval_scored_the_final_policy(method: dict[str, Any]) -> None:
    final = METHODS[method["name"]][-1]
    metrics = method["runs"]["eval"].data.metrics
    for key in ("format_valid", "grounded", "fulfillment"):
        assert 0.0 <= metrics[f"eval/{final}/{key}"] <= 1.0
        assert metrics[f"eval/final/{key}"] == metrics[f"eval/{final}/{key}"]
    assert metrics[f"eval/{final}/n_requests"] == EVAL_REQUESTS


def test_kto_reference_is_the_adapter_disabled_model(run_method: Callable[[str], dict[str, Any]]) -> None:
    """No second model in memory; and the kto recipe trains with gradient checkpointing (TRL's default) on."""
    kto = run_method("kto")["runs"]["kto"]
    assert kto.data.tags["encore.reference"] == "adapter-disabled"
    assert kto.data.params["kto.args.gradient_checkpointing"] == "True"


def test_simpo_recipe_trains_sft_packed_and_padding_free(run_method: Callable[[str], dict[str, Any]]) -> None:
    """The SFT of the simpo recipe packs short examples into rows (TRL's bfd packing, padding-free batches)."""
    sft = run_method("simpo")["runs"]["sft"]
    assert sft.data.params["sft.args.packing"] == "True"
    # Packing fills each row with several examples: fewer rows of training than examples seen.
    assert sft.data.metrics["train/examples"] > sft.data.metrics["train/rows"]


def test_rlhf_rewards_include_the_reward_model_and_the_programmatic_checks(
    run_method: Callable[[str], dict[str, Any]],
) -> None:
    grpo = run_method("rlhf")["runs"]["grpo"]
    assert grpo.data.tags["encore.grpo_rewards"] == (
        "reward_model=1,format=1,grounded=1,distinct_artists=0.5,length=0.5"
    )
    assert math.isfinite(grpo.data.metrics["train/rewards/reward_model/mean"])
    for name in ("format_reward", "grounded_reward", "distinct_artists_reward"):
        assert 0.0 <= grpo.data.metrics[f"train/rewards/{name}/mean"] <= 1.0


def test_the_reward_model_is_scored_as_a_model_on_held_out_pairs(
    run_method: Callable[[str], dict[str, Any]],
) -> None:
    """Pair accuracy and calibration on the held-out users' pairs, and agreement with the hidden intent
    beside the logged labels' (the smoke data is simulated: every pair's prompt has an intent)."""
    metrics = run_method("rlhf")["runs"]["reward"].data.metrics
    assert metrics["reward/n_pairs"] > 0
    for name in ("pair_accuracy", "brier", "ece"):
        assert 0.0 <= metrics[f"reward/{name}"] <= 1.0
    # The intents were found (the key is there); the few smoke pairs need not differ in fit.
    assert 0 <= metrics["reward/n_intent_pairs"] <= metrics["reward/n_pairs"]
    if metrics["reward/n_intent_pairs"]:
        for name in ("intent_agreement", "label_intent_agreement"):
            assert 0.0 <= metrics[f"reward/{name}"] <= 1.0


def test_orpo_merge_writes_full_weights_that_match_the_adapter(
    run_method: Callable[[str], dict[str, Any]],
) -> None:
    """The orpo recipe trains a DoRA adapter with `merge: true`: the merged weights answer as the adapter does."""
    import torch
    from transformers import AutoModelForCausalLM

    from encore.train.lora import load_policy

    out = run_method("orpo")["out"]
    merged = AutoModelForCausalLM.from_pretrained(out / "orpo" / "merged", use_safetensors=True)
    policy, tokenizer = load_policy("builtin:tiny", [out / "orpo" / "adapter"])  # DoRA adapter, unmerged
    assert any("lora_magnitude_vector" in name for name, _ in policy.named_parameters())  # DoRA's magnitudes
    ids = tokenizer("c1 | Nick Drake - Pink Moon", return_tensors="pt").input_ids
    with torch.no_grad():
        assert torch.allclose(merged(ids).logits, policy(ids).logits, atol=1e-4)
    assert not any("lora" in name for name, _ in merged.named_parameters())


def test_export_merges_sft_and_kto_into_plain_weights(
    run_method: Callable[[str], dict[str, Any]], workdir: Path
) -> None:
    """`encore export`: base → SFT → KTO as one safetensors model that plain transformers loads."""
    import torch
    from transformers import AutoModelForCausalLM

    from encore.train.lora import load_policy

    out = run_method("kto")["out"]
    output = encore(["export", str(SMOKE / "kto.yaml"), *store(workdir, "kto")])
    assert str(out / "export") in output.replace("\n", "")
    merged = AutoModelForCausalLM.from_pretrained(out / "export", use_safetensors=True)
    policy, tokenizer = load_policy("builtin:tiny", [out / "sft" / "adapter", out / "kto" / "adapter"])
    ids = tokenizer("c1 | Nick Drake - Pink Moon", return_tensors="pt").input_ids
    with torch.no_grad():
        assert torch.allclose(merged(ids).logits, policy(ids).logits, atol=1e-4)
    export = runs_by_stage(workdir, "kto")["export"]
    assert export.data.tags["encore.stages"] == "sft+kto"


def test_dpo_ipo_with_precomputed_reference_trains_on_the_same_data(
    run_method: Callable[[str], dict[str, Any]], workdir: Path
) -> None:
    """A DPO loss variant (`loss_type: ipo`) with `precompute_ref_log_probs`, as a standalone stage on simpo's SFT."""
    run_method("simpo")
    args = ["train", "dpo", str(SMOKE / "simpo.yaml"), *store(workdir, "simpo")]
    for key, value in {
        "loss_type": "ipo",
        "precompute_ref_log_probs": "true",
        "max_steps": 2,
        "per_device_train_batch_size": 4,
        "max_length": 512,
        "gradient_checkpointing": "false",
        "save_strategy": '"no"',  # quoted: YAML reads a bare no as false
    }.items():
        args += ["--set", f"dpo.args.{key}={value}"]
    encore(args)
    dpo = runs_by_stage(workdir, "simpo")["dpo"]
    assert dpo.info.status == "FINISHED" and dpo.data.params["dpo.args.loss_type"] == "ipo"
    assert dpo.data.params["dpo.args.precompute_ref_log_probs"] == "True"
    assert dpo.data.tags["encore.reference"] == "adapter-disabled"  # even with precomputed log-probs
    assert dpo.data.metrics["train/lora_b_norm"] > 0 and dpo.data.metrics["train/base_max_change"] == 0.0
    assert math.isfinite(dpo.data.metrics["train/final_loss"])

"""Every preference method's smoke recipe end to end through the real CLI: prep → (SFT) → method → eval.

One pipeline per recipe under recipes/smoke/ (kto, orpo, simpo, rlhf; dpo is recipes/smoke/pipeline.yaml,
tested by test_pipeline.py), each in its own output directory and MLflow store. What matters is
asserted: the run finished, the method's stage trained its adapter (LoRA B moved) without touching
the base, the loss is finite, and the eval stage scored the method's policy.
"""

from __future__ import annotations

import math
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from mlflow import MlflowClient

ROOT = Path(__file__).resolve().parents[2]
ENCORE = [sys.executable, "-m", "encore.cli"]
# recipe → the stages it trains, in order (the last one's adapter is the final policy)
METHODS = {
    "kto": ["sft", "kto"],
    "orpo": ["orpo"],
    "simpo": ["sft", "simpo"],
    "rlhf": ["sft", "reward", "grpo"],
}

# Not yet run to completion in CI (written at the end of session 2 on a heavily loaded machine):
# kept out of `make test` until a quiet run passes, then switch this back to `pytest.mark.integration`.
pytestmark = pytest.mark.slow


def encore(args: list[str], workdir: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    overrides = ["--set", f"output_dir={workdir / 'out'}", "--set", f"tracking.uri={uri(workdir)}"]
    return subprocess.run(
        [*ENCORE, *args, *overrides], cwd=workdir, env=env, capture_output=True, text=True, timeout=1200
    )


def uri(workdir: Path) -> str:
    return f"sqlite:///{workdir / 'mlflow.db'}"


def runs_by_stage(workdir: Path) -> dict[str, Any]:
    client = MlflowClient(uri(workdir))
    experiments = client.search_experiments()
    runs = client.search_runs([e.experiment_id for e in experiments])
    return {r.data.tags["encore.stage"]: r for r in runs}


@pytest.fixture(scope="module")
def run_method(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], dict[str, Any]]:
    """`run_method(name)`: the smoke pipeline of a method, run once per module, then shared by its tests."""
    done_runs: dict[str, dict[str, Any]] = {}

    def run(name: str) -> dict[str, Any]:
        if name not in done_runs:
            workdir = tmp_path_factory.mktemp(f"method-{name}")
            done = encore(["pipeline", str(ROOT / "recipes" / "smoke" / f"{name}.yaml")], workdir)
            assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-5000:]
            done_runs[name] = {
                "name": name,
                "workdir": workdir,
                "stdout": done.stdout,
                "runs": runs_by_stage(workdir),
            }
        return done_runs[name]

    return run


@pytest.fixture(params=sorted(METHODS))
def method(request: pytest.FixtureRequest, run_method: Callable[[str], dict[str, Any]]) -> dict[str, Any]:
    """Each method's pipeline, for the tests every method must pass."""
    return run_method(request.param)


def test_pipeline_finished_with_a_child_run_per_stage(method: dict[str, Any]) -> None:
    runs = method["runs"]
    assert set(runs) == {"pipeline", "prep", "eval", *METHODS[method["name"]]}
    assert all(run.info.status == "FINISHED" for run in runs.values())
    parent = runs["pipeline"]
    assert parent.data.tags["encore.preference"] == method["name"]
    assert parent.data.params["preference"] == method["name"]


def test_each_training_stage_moved_its_adapter_and_not_the_base(method: dict[str, Any]) -> None:
    for stage in METHODS[method["name"]]:
        metrics = method["runs"][stage].data.metrics
        assert metrics["train/lora_b_norm"] > 0, stage  # lora_B starts at zero
        assert metrics["train/base_max_change"] == 0.0, stage
        assert math.isfinite(metrics["train/final_loss"]), stage
        assert metrics["train/steps"] >= 1, stage
        assert (method["workdir"] / "out" / stage / "adapter" / "adapter_model.safetensors").exists()


def test_method_logs_its_own_train_metrics_under_stable_names(method: dict[str, Any]) -> None:
    stage = METHODS[method["name"]][-1]
    metrics = method["runs"][stage].data.metrics
    assert math.isfinite(
        metrics["train/loss"]
    )  # the trainer's own logged loss, through MlflowMetricsCallback
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
    assert metrics[f"eval/{final}/n_requests"] == 8
    parent = method["runs"]["pipeline"].data.metrics
    assert parent["eval/final/n_requests"] == 8
    assert f"{final}/fulfillment" in method["stdout"]


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


def test_orpo_merge_writes_full_weights_that_match_the_adapter(
    run_method: Callable[[str], dict[str, Any]],
) -> None:
    """The orpo recipe trains a DoRA adapter with `merge: true`: the merged weights answer as the adapter does."""
    import torch
    from transformers import AutoModelForCausalLM

    from encore.train.lora import load_policy

    out = run_method("orpo")["workdir"] / "out"
    merged = AutoModelForCausalLM.from_pretrained(out / "orpo" / "merged", use_safetensors=True)
    policy, tokenizer = load_policy("builtin:tiny", [out / "orpo" / "adapter"])  # DoRA adapter, unmerged
    ids = tokenizer("c1 | Nick Drake - Pink Moon", return_tensors="pt").input_ids
    with torch.no_grad():
        assert torch.allclose(merged(ids).logits, policy(ids).logits, atol=1e-4)
    assert not any("lora" in name for name, _ in merged.named_parameters())


def test_dpo_ipo_variant_trains_on_the_same_prepared_data(
    run_method: Callable[[str], dict[str, Any]],
) -> None:
    """A real run of a DPO loss variant (`loss_type: ipo`), as a standalone stage on the simpo run's data and SFT."""
    method = run_method("simpo")
    args = ["train", "dpo", str(ROOT / "recipes" / "smoke" / "simpo.yaml")]
    for key, value in {
        "loss_type": "ipo",
        "max_steps": 2,
        "per_device_train_batch_size": 4,
        "max_length": 512,
        "gradient_checkpointing": "false",
        "save_strategy": '"no"',  # quoted: YAML reads a bare no as false
    }.items():
        args += ["--set", f"dpo.args.{key}={value}"]
    done = encore(args, method["workdir"])
    assert done.returncode == 0, done.stderr[-5000:]
    dpo = runs_by_stage(method["workdir"])["dpo"]
    assert dpo.info.status == "FINISHED" and dpo.data.params["dpo.args.loss_type"] == "ipo"
    assert dpo.data.metrics["train/lora_b_norm"] > 0 and dpo.data.metrics["train/base_max_change"] == 0.0
    assert math.isfinite(dpo.data.metrics["train/final_loss"])


def test_register_takes_the_final_policy_of_a_non_dpo_method(
    run_method: Callable[[str], dict[str, Any]],
) -> None:
    """`encore register` on the kto run: the registered model is base → SFT → KTO and loads back the same."""
    method = run_method("kto")
    recipe = str(ROOT / "recipes" / "smoke" / "kto.yaml")
    overrides = ["--set", "register.max_new_tokens=48", "--set", "register.retrieval_k=8"]
    done = encore(["register", recipe, *overrides], method["workdir"])
    assert done.returncode == 0, done.stderr[-5000:]
    client = MlflowClient(uri(method["workdir"]), uri(method["workdir"]))
    version = client.get_model_version_by_alias("playlist-generator", "candidate")
    assert version.tags["stages"] == "sft+kto"
    assert runs_by_stage(method["workdir"])["register"].data.metrics["register/roundtrip_match"] == 1.0

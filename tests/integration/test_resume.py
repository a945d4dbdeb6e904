"""SIGKILL during SFT, then `--resume`: the same adapter and losses as an uninterrupted run, in the same MLflow run.

The smoke recipe on builtin:tiny, 6 steps of 2 examples with a checkpoint every 3 steps, on the
CPU in fp32 with LoRA dropout 0. The killed process is stopped right after `checkpoint-3` is
complete; the rerun continues from it (model, optimizer, scheduler, RNG and data position all come
from the checkpoint) and must end where the uninterrupted run ends.

Tolerance: `atol=1e-6, rtol=1e-5` on the adapter weights and `1e-5` on the losses. A resumed run
redoes exactly the same float32 operations in the same order (same threads, same batches, state
restored bit for bit), so the expected difference is zero; the margin is a few float32 ulps
(eps 1.2e-7) of weights of order 1e-2 to 1, small against what a wrong resume changes: one step of
Adam at lr 3e-3 moves each LoRA weight by ~1e-3, and restarting the data order or the optimizer
changes the step-4 loss in the second decimal.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import torch
from mlflow import MlflowClient
from safetensors.torch import load_file

ROOT = Path(__file__).resolve().parents[2]
SMOKE = ROOT / "recipes" / "smoke" / "pipeline.yaml"
ENCORE = [sys.executable, "-m", "encore.cli"]
TRAIN = [
    "--set", "lora.dropout=0",
    "--set", "sft.args.max_steps=6",
    "--set", "sft.args.per_device_train_batch_size=2",
    "--set", "sft.args.logging_steps=1",
    "--set", "sft.args.save_strategy=steps",
    "--set", "sft.args.save_steps=3",
    "--set", "sft.args.dataloader_num_workers=0",
]  # fmt: skip

pytestmark = pytest.mark.integration


def encore_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in ("MLFLOW_TRACKING_URI", "ENCORE_RESUME")}


def workspace(prepared: Path, root: Path) -> tuple[Path, list[str]]:
    """An output directory that sees the prepared data, with its own MLflow store; returns it and its overrides."""
    out = root / "out"
    out.mkdir(parents=True)
    (out / "prepared").symlink_to(prepared)
    return out, ["--set", f"output_dir={out}", "--set", f"tracking.uri={store(root)}"]


def store(root: Path) -> str:
    return f"sqlite:///{root / 'mlflow.db'}"


def sft_runs(root: Path) -> list[Any]:
    client = MlflowClient(store(root))
    experiment = client.get_experiment_by_name("encore-smoke")
    return [
        r for r in client.search_runs([experiment.experiment_id]) if r.data.tags.get("encore.stage") == "sft"
    ]


def losses(root: Path, run_id: str) -> dict[int, float]:
    """The train/loss history, the last value logged at each step (a killed attempt may log one twice)."""
    history = sorted(
        MlflowClient(store(root)).get_metric_history(run_id, "train/loss"), key=lambda m: m.timestamp
    )
    return {m.step: m.value for m in history}


def complete(checkpoint: Path) -> bool:
    try:
        json.loads((checkpoint / "trainer_state.json").read_text())
    except (OSError, ValueError):
        return False
    return True


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory, prepared_smoke: Path) -> dict[str, Any]:
    straight_root = tmp_path_factory.mktemp("straight")
    straight, straight_args = workspace(prepared_smoke, straight_root)
    done = subprocess.run(
        [*ENCORE, "train", "sft", str(SMOKE), *TRAIN, *straight_args],
        cwd=straight_root, env=encore_env(), capture_output=True, text=True, timeout=1200,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-5000:]

    killed_root = tmp_path_factory.mktemp("killed")
    killed, killed_args = workspace(prepared_smoke, killed_root)
    log = (killed_root / "killed.log").open("w")
    proc = subprocess.Popen(
        [*ENCORE, "train", "sft", str(SMOKE), *TRAIN, *killed_args],
        cwd=killed_root, env=encore_env(), stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    checkpoint = killed / "sft" / "checkpoints" / "checkpoint-3"
    deadline = time.monotonic() + 1200
    while not complete(checkpoint) and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    log.close()
    assert complete(checkpoint), (killed_root / "killed.log").read_text()[-5000:]
    assert proc.returncode == -signal.SIGKILL, "the run ended before it could be killed"
    at_kill = {
        "record": json.loads((killed / "sft" / "run.json").read_text()),
        "runs": [(r.info.run_id, r.info.status) for r in sft_runs(killed_root)],
        "adapter": (killed / "sft" / "adapter").exists(),
        "checkpoints": sorted(p.name for p in (killed / "sft" / "checkpoints").iterdir()),
    }

    resumed = subprocess.run(
        [*ENCORE, "train", "sft", str(SMOKE), *TRAIN, *killed_args, "--resume"],
        cwd=killed_root, env=encore_env(), capture_output=True, text=True, timeout=1200,
    )  # fmt: skip
    assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr[-5000:]
    return {
        "straight": straight,
        "straight_root": straight_root,
        "resumed": killed,
        "resumed_root": killed_root,
        "at_kill": at_kill,
    }


def test_the_kill_left_a_running_run_and_no_adapter(runs: dict[str, Any]) -> None:
    at_kill = runs["at_kill"]
    assert at_kill["record"]["status"] == "RUNNING"
    assert at_kill["runs"] == [(at_kill["record"]["run_id"], "RUNNING")]  # SIGKILL: nobody could end it
    assert not at_kill["adapter"]
    assert "checkpoint-6" not in at_kill["checkpoints"]


def test_the_resumed_adapter_equals_the_uninterrupted_one(runs: dict[str, Any]) -> None:
    straight = load_file(runs["straight"] / "sft" / "adapter" / "adapter_model.safetensors")
    resumed = load_file(runs["resumed"] / "sft" / "adapter" / "adapter_model.safetensors")
    assert straight.keys() == resumed.keys() and straight
    for name in straight:
        assert torch.allclose(resumed[name], straight[name], atol=1e-6, rtol=1e-5), name
    lora_b = [t for n, t in straight.items() if "lora_B" in n]
    assert any(t.abs().max() > 1e-4 for t in lora_b)  # the adapter trained: there was something to compare


def test_one_mlflow_run_continued_and_finished(runs: dict[str, Any]) -> None:
    [run] = sft_runs(runs["resumed_root"])
    assert run.info.run_id == runs["at_kill"]["record"]["run_id"]
    assert run.info.status == "FINISHED"
    assert run.data.tags["encore.resumed"] == "true"
    assert run.data.tags["encore.resumed_from_step"] == "3"
    assert run.data.metrics["train/steps"] == 6
    record = json.loads((runs["resumed"] / "sft" / "run.json").read_text())
    assert record["status"] == "FINISHED" and record["run_id"] == run.info.run_id
    assert record["resumed_from_step"] == 3


def test_every_steps_loss_matches_the_uninterrupted_run(runs: dict[str, Any]) -> None:
    [straight] = sft_runs(runs["straight_root"])
    [resumed] = sft_runs(runs["resumed_root"])
    expected = losses(runs["straight_root"], straight.info.run_id)
    got = losses(runs["resumed_root"], resumed.info.run_id)
    assert sorted(expected) == sorted(got) == [1, 2, 3, 4, 5, 6]
    for step in expected:
        assert got[step] == pytest.approx(expected[step], abs=1e-5), step

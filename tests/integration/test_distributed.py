"""SFT on 2 processes through the real CLI: `--launcher accelerate` (cpu_ddp: gloo) and `--launcher spark` (TorchDistributor).

The processes write what they saw and held (`ENCORE_TRAIN_DEBUG_DIR`, `encore.train.debug`): the
hash of every training row each rank's model was given, and a digest of its adapter weights;
rank 0 also hashes every row of the training set. From those files and the MLflow store the tests
check that each rank trained on its own shard, that only rank 0 logged, and that the saved adapter
is the one rank 0 (and, DDP keeping replicas equal, rank 1) held at the end.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from mlflow import MlflowClient
from safetensors.torch import load_file

from encore.train.debug import ENV as DEBUG_ENV
from encore.train.debug import tensor_digest

ROOT = Path(__file__).resolve().parents[2]
SMOKE = ROOT / "recipes" / "smoke" / "pipeline.yaml"
ENCORE = [sys.executable, "-m", "encore.cli"]
STEPS, BATCH = 3, 2
TRAIN = [
    "--set", f"sft.args.max_steps={STEPS}",
    "--set", f"sft.args.per_device_train_batch_size={BATCH}",
    "--set", "sft.args.logging_steps=1",
    "--set", "sft.args.dataloader_num_workers=0",
]  # fmt: skip

pytestmark = pytest.mark.integration


def encore_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in ("MLFLOW_TRACKING_URI", "ENCORE_RESUME")}


def launched(
    tmp_path_factory: pytest.TempPathFactory, prepared: Path, name: str, launcher: list[str]
) -> dict[str, Any]:
    """`encore train sft` under a launcher on `prepared`, in its own output directory and MLflow store."""
    root = tmp_path_factory.mktemp(name)
    out = root / "out"
    out.mkdir()
    (out / "prepared").symlink_to(prepared)
    uri = f"sqlite:///{root / 'mlflow.db'}"
    overrides = ["--set", f"output_dir={out}", "--set", f"tracking.uri={uri}"]
    env = {**encore_env(), DEBUG_ENV: str(root / "debug")}
    done = subprocess.run(
        [*ENCORE, "train", "sft", str(SMOKE), *TRAIN, *overrides, *launcher],
        cwd=root, env=env, capture_output=True, text=True, timeout=1500,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-6000:]
    client = MlflowClient(uri)
    runs = client.search_runs([e.experiment_id for e in client.search_experiments()])
    ranks = {
        int(p.stem.removeprefix("rank")): json.loads(p.read_text())
        for p in (root / "debug").glob("rank*.json")
    }
    return {"out": out, "runs": runs, "ranks": ranks, "log": done.stdout + done.stderr}


@pytest.fixture(scope="module")
def ddp(tmp_path_factory: pytest.TempPathFactory, prepared_smoke: Path) -> dict[str, Any]:
    config = ROOT / "recipes" / "accelerate" / "cpu_ddp.yaml"
    launcher = ["--launcher", "accelerate", "--accelerate-config", str(config)]
    return launched(tmp_path_factory, prepared_smoke, "cpu-ddp", launcher)


@pytest.fixture(scope="module")
def spark(tmp_path_factory: pytest.TempPathFactory, prepared_smoke: Path) -> dict[str, Any]:
    launcher = ["--launcher", "spark", "--num-processes", "2"]
    return launched(tmp_path_factory, prepared_smoke, "torch-distributor", launcher)


def saved_adapter_digest(out: Path) -> str:
    return tensor_digest(load_file(out / "sft" / "adapter" / "adapter_model.safetensors"))


def test_ddp_trained_two_ranks_on_different_shards(ddp: dict[str, Any]) -> None:
    ranks = ddp["ranks"]
    assert sorted(ranks) == [0, 1] and all(r["world_size"] == 2 for r in ranks.values())
    dataset = Counter(ranks[0]["dataset"])
    assert len(dataset) > 2 * STEPS * BATCH  # one pass: no rank runs out of rows and wraps around
    seen = [Counter(ranks[r]["seen"]) for r in (0, 1)]
    for counts in seen:
        assert counts.total() == STEPS * BATCH  # every step, a batch of its own
        assert set(counts) <= set(dataset)  # the hashes are of real training rows
    assert seen[0] != seen[1]
    for row, n in (seen[0] + seen[1]).items():
        assert n <= dataset[row], "a row was trained on by both ranks"  # the shards are disjoint


def test_ddp_saved_the_adapter_rank_0_held(ddp: dict[str, Any]) -> None:
    ranks = ddp["ranks"]
    assert ranks[0]["adapter_sha256"] == saved_adapter_digest(ddp["out"])
    assert ranks[1]["adapter_sha256"] == ranks[0]["adapter_sha256"]  # DDP kept the replicas equal


def test_ddp_made_exactly_one_mlflow_run(ddp: dict[str, Any]) -> None:
    [run] = ddp["runs"]
    assert run.info.status == "FINISHED"
    assert run.data.tags["encore.stage"] == "sft"
    assert run.data.metrics["train/steps"] == STEPS
    assert run.data.metrics["train/lora_b_norm"] > 0
    record = json.loads((ddp["out"] / "sft" / "run.json").read_text())
    assert record == record | {"run_id": run.info.run_id, "status": "FINISHED"}


def test_torch_distributor_trains_on_two_processes_with_one_mlflow_run(spark: dict[str, Any]) -> None:
    ranks = spark["ranks"]
    assert sorted(ranks) == [0, 1] and all(r["world_size"] == 2 for r in ranks.values())
    assert all(Counter(r["seen"]).total() == STEPS * BATCH for r in ranks.values())
    assert ranks[0]["adapter_sha256"] == ranks[1]["adapter_sha256"] == saved_adapter_digest(spark["out"])
    [run] = spark["runs"]
    assert run.info.status == "FINISHED" and run.data.tags["encore.stage"] == "sft"
    assert run.data.metrics["train/steps"] == STEPS

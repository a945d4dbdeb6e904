"""The pure parts of the GPU check (bench/gpu_check.py): the card's peak FLOPs, throughput from logged steps, MFU.

The check itself needs a CUDA GPU; here its shell wrapper is syntax-checked and, on this
machine without one, must stop with a message instead of training.
"""

from __future__ import annotations

import importlib
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"
sys.path.insert(0, str(BENCH))
gpu_check = importlib.import_module("gpu_check")  # bench/ holds scripts, not a package


@pytest.mark.parametrize(
    ("name", "peak"),
    [
        ("NVIDIA H100 80GB HBM3", 989e12),
        ("NVIDIA H100 PCIe", 756e12),
        ("NVIDIA H200", 989e12),
        ("NVIDIA A100-SXM4-40GB", 312e12),
        ("NVIDIA L4", 121e12),
        ("NVIDIA GeForce RTX 4090", None),
    ],
)
def test_peak_flops_by_card_name(name: str, peak: float | None) -> None:
    assert gpu_check.peak_flops(name, env={}) == peak


def test_the_environment_names_the_peak_of_any_card() -> None:
    assert gpu_check.peak_flops("NVIDIA GeForce RTX 4090", env={"ENCORE_PEAK_FLOPS": "165.2e12"}) == 165.2e12
    assert gpu_check.peak_flops("NVIDIA H100 80GB HBM3", env={"ENCORE_PEAK_FLOPS": "1e12"}) == 1e12


def test_tokens_per_second_leaves_out_the_warm_up_steps() -> None:
    # (ms, cumulative tokens): the first two steps are slow (start-up), then 1,000 tokens per 100 ms.
    points = [(0, 1000), (5000, 2000), (5100, 3000), (5200, 4000), (5300, 5000)]
    assert gpu_check.tokens_per_second(points) == pytest.approx(10_000)
    assert gpu_check.tokens_per_second(list(reversed(points))) == pytest.approx(10_000)  # order-free
    assert gpu_check.tokens_per_second(points, skip=0) == pytest.approx(4000 / 5.3)


def test_tokens_per_second_needs_two_steps_after_the_warm_up() -> None:
    with pytest.raises(ValueError, match="at least 4 logged steps"):
        gpu_check.tokens_per_second([(0, 1), (1, 2), (2, 3)])
    with pytest.raises(ValueError, match="no elapsed time"):
        gpu_check.tokens_per_second([(0, 1), (1, 2), (5, 3), (5, 4)])


def test_mfu_is_six_n_flops_per_token_over_the_peak() -> None:
    # 135M parameters at 100k tokens/s on a 989 TFLOPS card: 6 × 1.35e8 × 1e5 / 9.89e14 ≈ 8.2 %.
    assert gpu_check.mfu(135_000_000, 100_000, 989e12) == pytest.approx(0.0819, abs=1e-4)


def test_shell_wrapper_parses_and_stops_without_a_gpu() -> None:
    script = BENCH / "gpu_check.sh"
    assert subprocess.run(["bash", "-n", str(script)]).returncode == 0
    if shutil.which("nvidia-smi"):
        pytest.skip("this machine has nvidia-smi: the no-GPU message is not reachable here")
    done = subprocess.run([str(script)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    assert "no NVIDIA GPU" in done.stderr


def test_report_reads_the_stage_runs_of_a_store(tmp_path: Path) -> None:
    """`--store`: the figures come from the SFT and DPO runs' logged token counts (here 10k and 20k tokens/s)."""
    from mlflow import MlflowClient
    from mlflow.entities import Metric

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = MlflowClient(uri)
    experiment = client.create_experiment("gpu")
    for stage, per_step in (("sft", 1000), ("dpo", 2000)):
        run = client.create_run(experiment, tags={"encore.stage": stage})
        steps = [(0, per_step), (5000, 2 * per_step), (5100, 3 * per_step), (5200, 4 * per_step)]
        client.log_batch(
            run.info.run_id, metrics=[Metric("train/num_tokens", n, t, i) for i, (t, n) in enumerate(steps)]
        )
    figures = gpu_check.report(uri, params=100_000_000, peak=1e15)
    assert figures["sft_tokens_per_s"] == pytest.approx(10_000)
    assert figures["dpo_tokens_per_s"] == pytest.approx(20_000)
    assert figures["dpo_mfu"] == pytest.approx(6 * 1e8 * 20_000 / 1e15)

"""The SFT and DPO stages on builtin:smollm2-135m in bf16 on one CUDA GPU: tokens/s and model FLOPs utilisation.

Runs the real CLI (`encore prep`, `encore train sft`, `encore train dpo`) in a temporary
directory, then reads each stage's MLflow metrics: `train/num_tokens` (TRL's count of non-padding
tokens trained on) logged every step. Throughput is measured between the third and the last
logged step, so CUDA start-up and the first allocations are left out.

MFU = 6 × parameters × tokens/s ÷ the card's peak dense bf16 FLOPs (the usual "6N" model FLOPs
per trained token). With LoRA the frozen base needs no weight gradients, and DPO adds a
reference forward; both make the true hardware FLOPs differ from 6N, so read it as a
comparable yardstick across cards and changes, not as the hardware's busy fraction.

    bench/gpu_check.sh                      # checks for CUDA first, then runs this
    .venv/bin/python bench/gpu_check.py [--keep DIR] [--sft-steps 40] [--dpo-steps 30]
    .venv/bin/python bench/gpu_check.py --store sqlite:///mlruns/mlflow.db --card "NVIDIA H100 80GB HBM3"

`--store` reads the figures from an MLflow store whose SFT and DPO runs already ran on that card
(`bench/offline_gpu/run.sh` brings one back in results.tgz), without a GPU here.

Last line: `dpo_mfu=<x>`; without CUDA it prints `gpu_check=skipped` and exits 0 (`make bench`).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RECIPE = ROOT / "recipes" / "smollm2-135m" / "cpu" / "pipeline.yaml"
MODEL = "builtin:smollm2-135m"
PEAK_ENV = "ENCORE_PEAK_FLOPS"
# Peak dense (no sparsity) bf16 tensor FLOPs from NVIDIA's datasheets, by a name fragment of
# `torch.cuda.get_device_name()`; the first fragment found wins, so specific names come first.
PEAK_BF16_FLOPS: list[tuple[str, float]] = [
    ("H100 PCIe", 756e12),
    ("H100", 989e12),  # SXM
    ("H200", 989e12),
    ("A100", 312e12),
    ("L4", 121e12),
]


def peak_flops(device_name: str, env: dict[str, str] | None = None) -> float | None:
    """The card's peak bf16 FLOPs: `ENCORE_PEAK_FLOPS` when set, else the table above, else None."""
    env = os.environ if env is None else env
    if env.get(PEAK_ENV):
        return float(env[PEAK_ENV])
    for fragment, flops in PEAK_BF16_FLOPS:
        if fragment.lower() in device_name.lower():
            return flops
    return None


def tokens_per_second(points: Sequence[tuple[int, float]], skip: int = 2) -> float:
    """Throughput from (timestamp in ms, cumulative tokens) points, leaving out the first `skip`.

    Raises:
        ValueError: fewer than two points remain, or no time passed between them.
    """
    points = sorted(points)[skip:]
    if len(points) < 2:
        raise ValueError(
            f"need at least {skip + 2} logged steps to measure throughput, got {len(points) + skip}"
        )
    (t0, n0), (t1, n1) = points[0], points[-1]
    if t1 <= t0:
        raise ValueError("the logged steps carry no elapsed time")
    return (n1 - n0) / ((t1 - t0) / 1000)


def mfu(params: int, tokens_per_s: float, peak: float) -> float:
    """Model FLOPs utilisation: 6 × params FLOPs per token (forward 2N, backward 4N) against `peak`."""
    return 6 * params * tokens_per_s / peak


def _encore(args: list[str], workdir: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    subprocess.run([sys.executable, "-m", "encore.cli", *args], cwd=workdir, env=env, check=True)


def _stage_points(uri: str, stage: str) -> list[tuple[int, float]]:
    from mlflow import MlflowClient

    client = MlflowClient(uri)
    runs = client.search_runs(
        [e.experiment_id for e in client.search_experiments()], f"tags.`encore.stage` = '{stage}'"
    )
    history = client.get_metric_history(runs[0].info.run_id, "train/num_tokens")
    return [(m.timestamp, m.value) for m in history]


def report(uri: str, params: int, peak: float) -> dict[str, float]:
    """`<stage>_tokens_per_s` and `<stage>_mfu` of the SFT and DPO runs in the MLflow store at `uri`."""
    figures = {}
    for stage in ("sft", "dpo"):
        rate = tokens_per_second(_stage_points(uri, stage))
        figures[f"{stage}_tokens_per_s"] = rate
        figures[f"{stage}_mfu"] = mfu(params, rate, peak)
    return figures


def _print_report(uri: str, name: str, peak: float, batch: int | None) -> None:
    from encore.models import load_model

    model, _ = load_model(MODEL)
    params = sum(p.numel() for p in model.parameters())
    print(f"card={name!r} peak_bf16_flops={peak:.3g} model={MODEL} params={params} batch={batch}")
    for key, value in report(uri, params, peak).items():
        print(f"{key}={value:.0f}" if key.endswith("_per_s") else f"{key}={value:.4f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep", type=Path, help="work in this directory and keep it (default: a temp dir)")
    parser.add_argument("--sft-steps", type=int, default=40)
    parser.add_argument("--dpo-steps", type=int, default=30)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument(
        "--store", help="report from this MLflow store's runs instead of training (needs --card)"
    )
    parser.add_argument("--card", help="the GPU the --store runs ran on, e.g. 'NVIDIA H100 80GB HBM3'")
    args = parser.parse_args()

    if args.store:
        if not args.card:
            parser.error("--store needs --card (the GPU its runs ran on)")
        peak = peak_flops(args.card)
        if peak is None:
            sys.exit(f"gpu_check: unknown card {args.card!r}: set {PEAK_ENV} to its peak dense bf16 FLOPs")
        _print_report(args.store, args.card, peak, None)
        return

    import torch

    if not torch.cuda.is_available():
        print("gpu_check: no CUDA GPU on this machine; run bench/gpu_check.sh where there is one")
        print("gpu_check=skipped")
        return
    name = torch.cuda.get_device_name()
    peak = peak_flops(name)
    if peak is None:
        sys.exit(
            f"gpu_check: unknown card {name!r}: set {PEAK_ENV} to its peak dense bf16 FLOPs (e.g. 989e12)"
        )
    workdir = args.keep or Path(tempfile.mkdtemp(prefix="encore-gpu-check-"))
    workdir.mkdir(parents=True, exist_ok=True)
    uri = f"sqlite:///{workdir / 'mlflow.db'}"
    common = [
        "--set",
        f"output_dir={workdir / 'out'}",
        "--set",
        f"tracking.uri={uri}",
        "--set",
        f"base_model={MODEL}",
    ]
    gpu = {
        "use_cpu": "false",
        "bf16": "true",
        "logging_steps": "1",
        "per_device_train_batch_size": str(args.batch),
        "gradient_checkpointing": "false",
    }
    _encore(["prep", str(RECIPE), *common], workdir)
    for stage, steps in (("sft", args.sft_steps), ("dpo", args.dpo_steps)):
        overrides = [f"{stage}.args.{k}={v}" for k, v in {**gpu, "max_steps": str(steps)}.items()]
        _encore(
            ["train", stage, str(RECIPE), *common, *[x for o in overrides for x in ("--set", o)]], workdir
        )

    _print_report(uri, name, peak, args.batch)


if __name__ == "__main__":
    main()

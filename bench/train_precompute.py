"""DPO with vs without `precompute_ref_log_probs`, through encore's DPO stage: time per epoch.

Without it, every step runs the reference (the adapter-disabled policy) forward on the batch; with
it, TRL runs the reference once over the whole train set before the first step and stores the
log-probs in the dataset, so later epochs skip it. The variants differ by that recipe option only,
train `--epochs` epochs on the same pairs (the first `--pairs` train pairs), and the epoch time is the
stage's trainer time (`train_runtime`, which includes the precompute pass) / epochs. Fresh process per
run, A/B interleaved, medians (the 2 cores are shared with other jobs).
Last line: `train_precompute_epoch_time=<with / without>` (below 1: precomputing is faster).

    .venv/bin/python bench/train_precompute.py [--model builtin:tiny] [--epochs 2] [--pairs 64] [--repeats 3]
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
from pathlib import Path
from typing import Any

import pandas as pd
from train_common import child_result, conditions, interleaved, measure, median, prepared, run_stage

VARIANTS = ["precomputed", "per-step"]
BATCH = 8


def subset(workdir: Path, pairs: int) -> Path:
    """`workdir/prepared`: the shared prepared data with only the first `pairs` train pairs."""
    target = workdir / "prepared"
    shutil.copytree(prepared(), target, ignore=shutil.ignore_patterns("pairs"))
    rows = pd.read_parquet(prepared() / "pairs")
    rows = rows[rows["split"] == "train"].sort_values("pair_id").head(pairs)
    (target / "pairs").mkdir()
    rows.to_parquet(target / "pairs" / "part-0.parquet")
    return target


def run(variant: str, model: str, epochs: int, workdir: Path) -> dict[str, Any]:
    overrides = [
        f"base_model={model}",
        "sft.enabled=false",  # DPO starts from the base: this measures DPO alone
        f"dpo.args.num_train_epochs={epochs}",
        "dpo.args.max_steps=-1",
        f"dpo.args.per_device_train_batch_size={BATCH}",
        "dpo.args.max_length=512",
        "dpo.args.logging_steps=100",
        'dpo.args.save_strategy="no"',
        "dpo.args.gradient_checkpointing=false",
        f"dpo.args.precompute_ref_log_probs={str(variant == 'precomputed').lower()}",
    ]
    (workdir / "out").mkdir(parents=True)
    (workdir / "out" / "prepared").symlink_to(workdir.parent / "prepared")
    seconds, cpu, metrics = run_stage("dpo", workdir, overrides)
    return {
        "epoch_seconds": metrics["train/train_runtime"] / epochs,
        "stage_seconds": seconds,
        "stage_cpu_seconds": cpu,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="builtin:tiny")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--pairs", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--workdir", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child_result(run(args.child, args.model, args.epochs, Path(args.workdir)))
        return

    workdir = Path(tempfile.mkdtemp(prefix="encore-bench-precompute-"))
    subset(workdir, args.pairs)
    counter = iter(range(10**6))

    def one(variant: str) -> dict[str, Any]:
        sub = workdir / f"r{next(counter)}"
        options = ["--model", args.model, "--epochs", str(args.epochs), "--workdir", str(sub)]
        return measure(__file__, variant, options)

    print(conditions())
    results = interleaved(VARIANTS, args.repeats, one)
    epoch = {v: median(results[v], "epoch_seconds") for v in VARIANTS}
    print(conditions())
    print(
        f"model={args.model} {args.pairs} pairs, batch {BATCH}, {args.epochs} epochs, repeats={args.repeats} "
        "(medians, A/B interleaved)"
    )
    for v in VARIANTS:
        print(f"{v}: {epoch[v]:.2f} s per epoch")
    cpu = {v: median(results[v], "stage_cpu_seconds") for v in VARIANTS}
    print(
        f"stage CPU seconds (whole DPO stage): precomputed {cpu['precomputed']:.1f}, per-step {cpu['per-step']:.1f}"
    )
    print(f"train_precompute_epoch_time={epoch['precomputed'] / epoch['per-step']:.3f}")


if __name__ == "__main__":
    main()

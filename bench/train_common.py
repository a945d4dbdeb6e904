"""Shared plumbing of the `bench/train_*.py` benchmarks: prepared data once, one subprocess per measurement.

Every training benchmark compares two variants side by side. Each measurement runs in a fresh
subprocess (so peak RSS belongs to one variant, and no variant inherits another's warm caches or
allocator state), the variants alternate A, B, A, B, … and the report takes medians: the dev machine
has 2 cores shared with other jobs, and interleaving spreads their noise over both variants.

Run alone, it prepares the benchmarks' data (Spark prep of `recipes/smoke/kto.yaml`, cached under
`outputs/bench-train/`) and prints `train_bench_prep_seconds=<s>` (0 when it was already there).

    .venv/bin/python bench/train_common.py
"""

from __future__ import annotations

import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RECIPE = ROOT / "recipes" / "smoke" / "kto.yaml"  # its simulator and prep sections; the stages take overrides
BENCH_OUT = ROOT / "outputs" / "bench-train"


def prepared() -> Path:
    """`outputs/bench-train/out/prepared`, made once by `encore prep` (a few minutes of Spark on 2 cores)."""
    out = BENCH_OUT / "out"
    if not (out / "prepared" / "manifest.json").exists():
        BENCH_OUT.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [sys.executable, "-m", "encore.cli", "prep", str(RECIPE), *store_overrides(BENCH_OUT)],
            check=True,
            cwd=BENCH_OUT,
            env={k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"},
        )
    return out / "prepared"


def store_overrides(workdir: Path) -> list[str]:
    """`--set` overrides that put a run's outputs and MLflow store under `workdir`."""
    return [
        "--set",
        f"output_dir={workdir / 'out'}",
        "--set",
        f"tracking.uri=sqlite:///{workdir / 'mlflow.db'}",
    ]


def workdir_with_data() -> Path:
    """A fresh directory whose `out/prepared` links to the shared prepared data."""
    workdir = Path(tempfile.mkdtemp(prefix="encore-bench-"))
    (workdir / "out").mkdir()
    (workdir / "out" / "prepared").symlink_to(prepared())
    return workdir


def run_stage(stage: str, workdir: Path, overrides: Sequence[str]) -> tuple[float, float, dict[str, float]]:
    """Run an encore training stage in this process on `workdir`: (wall s, CPU s of its `main`, MLflow metrics).

    The MLflow store is created before the clock starts (a one-off a user has done long before).
    """
    import importlib

    import mlflow

    from encore import tracking
    from encore.config import load_recipe

    recipe = load_recipe(RECIPE, [*store_overrides(workdir)[1::2], *overrides])
    tracking.setup(recipe)
    module = importlib.import_module(f"encore.stages.{stage}")
    start, cpu = time.perf_counter(), cpu_seconds()
    module.main(recipe)
    seconds, cpu = time.perf_counter() - start, cpu_seconds() - cpu
    runs = mlflow.search_runs(experiment_names=[recipe.experiment], output_format="list")
    return seconds, cpu, dict(runs[0].data.metrics)


def cpu_seconds() -> float:
    """CPU time of this process (all its threads), user + system.

    On a shared machine wall time swings with the other jobs; the CPU time a run needs is steadier
    (contention still costs some: cache misses, frequency), so the reports give both.
    """
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def peak_rss_mb() -> float:
    """Peak resident set size of this process so far, in MiB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child_result(result: dict[str, Any]) -> None:
    """What a measuring subprocess reports: one JSON line, last, with its peak RSS added."""
    print(json.dumps({**result, "peak_rss_mb": peak_rss_mb()}), flush=True)


def measure(script: str, variant: str, args: Sequence[str] = ()) -> dict[str, Any]:
    """Run `script --child variant ARGS` in a fresh process and return the JSON it printed last."""
    done = subprocess.run(
        [sys.executable, script, "--child", variant, *args],
        capture_output=True,
        text=True,
        check=False,
        env={k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"},
    )
    if done.returncode != 0:
        raise RuntimeError(f"{variant} failed:\n{done.stdout[-2000:]}\n{done.stderr[-4000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def interleaved(
    variants: Sequence[str], repeats: int, run: Callable[[str], dict[str, Any]]
) -> dict[str, list[dict[str, Any]]]:
    """`repeats` rounds of every variant in turn (A, B, A, B, …), printing each measurement as it lands."""
    results: dict[str, list[dict[str, Any]]] = {v: [] for v in variants}
    for i in range(repeats):
        order = variants if i % 2 == 0 else list(reversed(variants))  # neither always goes first
        for variant in order:
            results[variant].append(run(variant))
            print(f"round {i + 1} {variant}: {json.dumps(results[variant][-1])}", flush=True)
    return results


def median(results: list[dict[str, Any]], key: str) -> float:
    return statistics.median(r[key] for r in results)


def conditions() -> str:
    """The machine and how busy it is, for the report line."""
    load = os.getloadavg()
    return (
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"python {platform.python_version()}; load average {load[0]:.1f} (1 min) {load[1]:.1f} (5 min) "
        f"at {time.strftime('%Y-%m-%d %H:%M')}"
    )


if __name__ == "__main__":
    start = time.perf_counter()
    existed = (BENCH_OUT / "out" / "prepared" / "manifest.json").exists()
    print(f"prepared: {prepared()}")
    print(f"train_bench_prep_seconds={0.0 if existed else time.perf_counter() - start:.1f}")

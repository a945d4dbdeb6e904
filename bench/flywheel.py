"""The flywheel's CPU lab (issue 22): prep, SFT, two on-policy rounds and the matched-compute control, timed.

Runs ``encore prep``, ``encore train sft`` and ``encore flywheel`` on ``recipes/smoke/flywheel.yaml`` (or
``--recipe``) in fresh processes, into ``--out`` with a SQLite MLflow store there, then prints each
policy's held-out figures, each round's reward-model figures and the paired differences of the final
policy against the control. Last line::

    flywheel_fulfillment_gain=<final − control> z=<gain / its standard error> saves_per_track_gain=<relative>

``saves_per_track_gain`` is the paired mean difference of ``sim_save_rate`` (saves per track started) over
the control's mean, so +0.05 is +5 %. Every figure is over the same held-out requests.

    .venv/bin/python bench/flywheel.py [--out outputs/flywheel-lab] [--set flywheel.rounds=1]
    .venv/bin/python bench/flywheel.py --reuse outputs/flywheel-lab --out outputs/flywheel-t03 --set flywheel.temperature=0.3
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import mlflow

ROOT = Path(__file__).resolve().parents[1]
RECIPE = ROOT / "recipes" / "smoke" / "flywheel.yaml"
REWARD_FIGURES = ("heldout_ndcg_10", "heldout_ndcg_10_retrieval", "pair_accuracy", "intent_agreement",
                  "label_intent_agreement", "sample_fulfillment", "picked_fulfillment", "best_of_n_fulfillment")  # fmt: skip
POLICY_FIGURES = ("fulfillment", "sim_save_rate", "sim_skip_rate", "grounded", "format_valid",
                  "distinct_artist_ratio", "catalog_coverage", "mean_popularity", "mean_length")  # fmt: skip


def encore(*args: str, env: dict[str, str]) -> float:
    """Run one `encore` command in a fresh process; its wall seconds."""
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "encore.cli", *args], check=True, env=env, cwd=ROOT)
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipe", type=Path, default=RECIPE)
    parser.add_argument("--out", type=Path, default=ROOT / "outputs" / "flywheel-lab")
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    parser.add_argument(
        "--reuse",
        type=Path,
        help="an earlier --out: copy its prepared data, logs and SFT adapter, run only the loop",
    )
    args = parser.parse_args(argv)
    out = args.out.resolve()
    store = f"sqlite:///{out / 'mlflow.db'}"
    sets = [f"output_dir={out}", *args.overrides]
    flags = [x for s in sets for x in ("--set", s)]
    env = {**os.environ, "MLFLOW_TRACKING_URI": store, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    out.mkdir(parents=True, exist_ok=True)
    seconds: dict[str, float] = {}
    if args.reuse is None:
        seconds["prep"] = encore("prep", str(args.recipe), *flags, env=env)
        seconds["sft"] = encore("train", "sft", str(args.recipe), *flags, env=env)
    else:  # a loop variant on the same SFT model
        for part in ("prepared", "raw", "sft"):
            shutil.copytree(args.reuse.resolve() / part, out / part, dirs_exist_ok=True)
    seconds["flywheel"] = encore("flywheel", str(args.recipe), *flags, env=env)
    results = json.loads((out / "flywheel" / "metrics.json").read_text())
    client = mlflow.MlflowClient(store)
    rounds = sorted(
        (r for e in client.search_experiments() for r in client.search_runs([e.experiment_id])
         if r.data.tags.get("encore.stage", "").startswith("flywheel-round-") and r.info.status == "FINISHED"),
        key=lambda r: r.info.start_time,
    )  # fmt: skip
    names = list(results)
    print("\n| policy | " + " | ".join(POLICY_FIGURES) + " |")
    print("|---|" + "---|" * len(POLICY_FIGURES))
    for name in names:
        values = [results[name].get(m) for m in POLICY_FIGURES]
        print(f"| {name} | " + " | ".join("–" if v is None else f"{v:.3f}" for v in values) + " |")
    print("\n| round | pairs | " + " | ".join(REWARD_FIGURES) + " |")
    print("|---|---|" + "---|" * len(REWARD_FIGURES))
    for run in rounds:
        m = run.data.metrics
        values = [m.get(f"reward/{f}") for f in REWARD_FIGURES]
        print(f"| {run.data.tags['encore.stage'].removeprefix('flywheel-')} | {m.get('round/pairs', 0):.0f} | "
              + " | ".join("–" if v is None else f"{v:.3f}" for v in values) + " |")  # fmt: skip
    parent = next(
        r for e in client.search_experiments() for r in client.search_runs([e.experiment_id])
        if r.data.tags.get("encore.stage") == "flywheel" and r.info.status == "FINISHED"
    )  # fmt: skip
    final = max(n for n in names if n.startswith("round-"))
    m = parent.data.metrics
    key = f"flywheel/{final}-control"
    gain, se = m[f"{key}/fulfillment"], m.get(f"{key}/fulfillment_se")
    saves = m[f"{key}/sim_save_rate"] / results["control"]["sim_save_rate"]
    saves_z = (
        m[f"{key}/sim_save_rate"] / m[f"{key}/sim_save_rate_se"] if m.get(f"{key}/sim_save_rate_se") else 0.0
    )
    print(
        "\nseconds: "
        + ", ".join(f"{k} {v:.0f}" for k, v in seconds.items())
        + f", total {sum(seconds.values()):.0f}"
    )
    print(f"saves per track started: {m[f'{key}/sim_save_rate']:+.4f} (z={saves_z:.2f})")
    print(
        f"flywheel_fulfillment_gain={gain:.4f} z={gain / se if se else 0.0:.2f} saves_per_track_gain={saves:.4f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

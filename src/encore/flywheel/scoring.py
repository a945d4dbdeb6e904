"""The flywheel's held-out scores: each policy's greedy playlists on the same eval requests, and paired differences.

A policy is scored once: its metrics and per-request rows go to `<dir>/eval.json`, which a resumed
flywheel reads instead of generating again. Differences are per request (`evaluation.paired`), so the
final policy and the control are compared on exactly the same requests and simulated replays.
"""

from __future__ import annotations

import gc
import json
from collections.abc import Mapping, Sequence
from pathlib import Path

import mlflow
import pandas as pd
from transformers import set_seed

from encore.config import Recipe
from encore.stages.evaluate import greedy_playlists, policy_on_device
from encore.tracking import write_json
from evaluation.paired import PAIRED_METRICS, PairedDelta, paired_delta
from evaluation.score import EvalResult, score_playlists

# What the flywheel reports per policy, and its paired differences (+1: higher is better).
FLYWHEEL_METRICS: dict[str, int] = {
    **PAIRED_METRICS,
    "distinct_artist_ratio": 1,
    "mean_popularity": -1,
    "n_lines": 1,  # a count: its better and worse say longer and shorter
}


def evaluate_policy(
    recipe: Recipe, adapters: list[Path], rows: Sequence[Mapping], catalog: pd.DataFrame, where: Path
) -> EvalResult:
    """Greedy playlists of the policy `adapters` make for `rows`, scored as the eval stage scores them;
    `eval/<where's name>/<metric>` on the active run."""
    cache = where / "eval.json"
    if cache.exists():
        saved = json.loads(cache.read_text())
        return EvalResult(metrics=saved["metrics"], per_row=saved["per_row"])
    set_seed(recipe.seed)
    model, tokenizer = policy_on_device(recipe, adapters)
    completions = greedy_playlists(recipe, model, tokenizer, rows)
    del model
    gc.collect()
    result = score_playlists(completions, rows, catalog, seed=recipe.seed, n_replays=recipe.eval.sim_replays)
    write_json(cache, {"metrics": result.metrics, "per_row": result.per_row})
    mlflow.log_metrics({f"eval/{where.name}/{k}": v for k, v in result.metrics.items()})
    return result


def paired_report(
    results: Mapping[str, EvalResult], final: str, baselines: Sequence[str]
) -> dict[str, list[PairedDelta]]:
    """`final` minus each of `baselines`, per request, on :data:`FLYWHEEL_METRICS`."""
    return {
        base: [
            paired_delta(results[base].per_row, results[final].per_row, metric, higher)
            for metric, higher in FLYWHEEL_METRICS.items()
        ]
        for base in baselines
    }


def summary_table(results: Mapping[str, EvalResult], final: str) -> str:
    """Every policy's held-out figures, then `final` minus the control and SFT with standard errors (Markdown)."""
    names = list(results)
    lines = ["| metric | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
    for metric in ("fulfillment", "sim_save_rate", "sim_skip_rate", "grounded", "format_valid",
                   "distinct_artist_ratio", "catalog_coverage", "mean_popularity", "mean_length"):  # fmt: skip
        values = [results[n].metrics.get(metric) for n in names]
        lines.append(f"| {metric} | " + " | ".join("–" if v is None else f"{v:.3f}" for v in values) + " |")
    for base, deltas in paired_report(
        results, final, [n for n in ("control", "sft") if n in results]
    ).items():
        lines += ["", f"{final} − {base} (paired over the same requests):"]
        for d in deltas:
            if d.mean is not None:
                se = "" if d.stderr is None else f" ± {d.stderr:.4f}"
                lines.append(f"  {d.metric}: {d.mean:+.4f}{se} (n={d.n}, better {d.better}, worse {d.worse})")
    return "\n".join(lines)

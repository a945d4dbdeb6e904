"""Prep stage: simulated or logged feedback → validated, paired, split datasets with a manifest (Spark).

Besides the manifest's counts, the run records every input and output as an `mlflow.data` Spark
dataset whose digest is the manifest's content fingerprint (so two runs on the same data show the
same digest), the mix of pair strategies, and plots of the pair margins and position propensities.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

import mlflow
import pandas as pd

from encore.config import Recipe
from encore.tracking import log_manifest_metrics, stage_run

LOGGED_OUTPUTS = ("pairs", "unpaired", "sft", "eval", "quarantine")


def raw_logs(recipe: Recipe, spark: Any) -> dict[str, str | None]:
    """Paths of the canonical logs: the recipe's own, a public dataset's, or simulated (deterministic by seed)."""
    if recipe.data.source == "logs":
        assert recipe.data.logs is not None  # checked when the recipe was loaded
        return recipe.data.logs.model_dump()
    if recipe.data.source == "ingest":
        from data_prep.adapters import ingest

        assert recipe.data.ingest is not None  # checked when the recipe was loaded
        raw = recipe.out / "raw"
        ingest(spark, recipe.data.ingest.kind, recipe.data.ingest.input, str(raw))
        mlflow.log_artifact(str(raw / "manifest.json"), "ingest")
        return {name: str(raw / name) for name in ("responses", "interactions", "catalog")}
    from playlist.simulator import simulate

    sim = recipe.data.simulator
    paths = simulate(
        recipe.out / "raw",
        seed=recipe.seed,
        n_users=sim.n_users,
        sessions_per_user=sim.sessions_per_user,
        n_artists=sim.n_artists,
        n_tracks=sim.n_tracks,
        candidates_k=sim.candidates_k,
        policy_quality=sim.policy_quality,
    )
    return {name: str(path) for name, path in paths.items()}


def main(recipe: Recipe) -> dict:
    """Run the data_prep job on a local (or configured) Spark master; returns its manifest."""
    from data_prep.job import run
    from data_prep.session import get_spark

    out = recipe.out / "prepared"
    with stage_run(recipe, "prep"):
        spark = get_spark(
            recipe.prep.spark_master, app_name=f"encore-prep-{recipe.name}", conf=recipe.prep.spark_conf
        )
        try:
            logs = raw_logs(recipe, spark)
            manifest = run(
                spark,
                responses=str(logs["responses"]),
                interactions=str(logs["interactions"]),
                catalog=str(logs["catalog"]),
                intents=logs.get("intents"),
                out=str(out),
                hash_key=recipe.hash_key,
                settings=recipe.prep,
                seed=recipe.seed,
            )
            _log_datasets(spark, manifest)
        finally:
            # After a stop mid-call (SIGTERM: SystemExit inside a py4j call) the gateway connection is
            # unusable and stopping fails too; that second error must not hide the first.
            with contextlib.suppress(Exception):
                spark.stop()
        log_manifest_metrics(manifest)
        mlflow.log_metric("prep/requests_masked", manifest["requests_masked"])
        mlflow.log_artifact(str(out / "manifest.json"))
        _log_plots(out, manifest)
    return manifest


def _log_datasets(spark: Any, manifest: dict) -> None:
    """Inputs and outputs as `mlflow.data` Spark datasets, their digests the manifest's fingerprints."""
    from mlflow.data.spark_dataset import from_spark

    from data_prep.inputs import open_input

    for name, entry in manifest["inputs"].items():
        frame = open_input(spark, entry["path"])
        dataset = from_spark(frame, path=entry["path"], name=f"raw-{name}", digest=entry["fingerprint"])
        mlflow.log_input(dataset, context="raw")
    for name in LOGGED_OUTPUTS:
        entry = manifest["outputs"][name]
        frame = spark.read.parquet(entry["path"])
        dataset = from_spark(frame, path=entry["path"], name=name, digest=entry["fingerprint"])
        mlflow.log_input(dataset, context="prepared")


def _log_plots(out: Path, manifest: dict) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    pairs = pd.read_parquet(out / "pairs", columns=["margin", "strategy"])
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    for strategy, group in sorted(pairs.groupby("strategy")):
        left.hist(group["margin"], bins=30, alpha=0.6, label=f"{strategy} ({len(group)})")
    left.set(title="Reward margin of the pairs", xlabel="reward(chosen) − reward(rejected)", ylabel="pairs")
    if len(pairs):
        left.legend()
    propensity = pd.DataFrame(manifest["position_propensity"])
    if len(propensity):
        right.plot(propensity["position"], propensity["propensity"], marker="o")
    right.set(
        title="Examination propensity by position", xlabel="position (0 = first)", ylabel="θ", ylim=(0, 1.05)
    )
    fig.tight_layout()
    mlflow.log_figure(fig, "prep/margins_and_propensity.png")
    plt.close(fig)

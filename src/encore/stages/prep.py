"""Prep stage: simulated or logged feedback → validated, paired, split datasets with a manifest (Spark)."""

from __future__ import annotations

import os
from pathlib import Path

import mlflow
import pandas as pd
from mlflow.data.pandas_dataset import PandasDataset, from_pandas

from encore.config import Recipe
from encore.tracking import log_manifest_metrics, stage_run


def raw_logs(recipe: Recipe) -> dict[str, str | None]:
    """Paths of the canonical logs: the recipe's own, or freshly simulated ones (deterministic by seed)."""
    if recipe.data.source == "logs":
        assert recipe.data.logs is not None  # checked when the recipe was loaded
        return recipe.data.logs.model_dump()
    from encore.simulator import simulate

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
        logs = raw_logs(recipe)
        spark = get_spark(recipe.prep.spark_master, app_name=f"encore-prep-{recipe.name}")
        try:
            manifest = run(
                spark,
                responses=str(logs["responses"]),
                interactions=str(logs["interactions"]),
                catalog=str(logs["catalog"]),
                intents=logs.get("intents"),
                out=str(out),
                eval_fraction=recipe.prep.eval_fraction,
                min_margin=recipe.prep.min_margin,
                sft_min_reward=recipe.prep.sft_min_reward,
                max_pairs_per_prompt=recipe.prep.max_pairs_per_prompt,
                early_skip=recipe.prep.early_skip,
                max_request_chars=recipe.prep.max_request_chars,
                hash_key=os.environ.get("ENCORE_HASH_KEY", recipe.prep.hash_key),
                seed=recipe.seed,
            )
        finally:
            spark.stop()
        for name in ("responses", "interactions", "catalog"):
            mlflow.log_input(_dataset(Path(str(logs[name])), f"raw-{name}"), context="raw")
        for name in ("pairs", "sft", "eval"):
            mlflow.log_input(_dataset(out / name, name), context="prepared")
        log_manifest_metrics(manifest)
        mlflow.log_artifact(str(out / "manifest.json"))
    return manifest


def _dataset(path: Path, name: str) -> PandasDataset:
    """An `mlflow.data` dataset (schema, digest, source) for a JSONL file or a Parquet directory."""
    frame = pd.read_json(path, lines=True) if path.suffix == ".jsonl" else pd.read_parquet(path)
    return from_pandas(frame, source=str(path), name=name)

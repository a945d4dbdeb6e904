"""Register stage: merge the adapters, log the pyfunc (as code), register it with an alias, prove the round trip."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import mlflow
import pandas as pd
from mlflow import MlflowClient
from mlflow.models import ModelSignature
from mlflow.types.schema import Array, ColSpec, Schema

from encore.config import Recipe
from encore.registry.promote import floor_tags
from encore.tracking import git_commit, stage_run
from encore.train.data import check_prepared_format
from encore.train.lora import load_policy
from playlist import pyfunc_model
from playlist.inference import PlaylistGenerator
from playlist.prompts import PROMPT_FORMAT

SIGNATURE = ModelSignature(
    inputs=Schema(
        [
            ColSpec("string", "request"),
            ColSpec(Array("string"), "history", required=False),
            ColSpec(Array("string"), "candidates", required=False),
        ]
    ),
    outputs=Schema(
        [
            ColSpec("string", "request"),
            ColSpec(Array("string"), "track_ids"),
            ColSpec(Array("string"), "artists"),
            ColSpec(Array("string"), "titles"),
            ColSpec(Array("boolean"), "grounded"),
            ColSpec("string", "completion"),
        ]
    ),
)

_LOAD_AND_PREDICT = """
import json, sys, mlflow, pandas as pd
model = mlflow.pyfunc.load_model(sys.argv[1])
out = model.predict(pd.read_json(sys.argv[2], orient="records"))
print(json.dumps(out[["track_ids", "completion"]].to_dict("records")))
"""


def data_fingerprint(manifest: dict) -> str:
    """One hash over the fingerprints of the prepared outputs the model was trained and evaluated on."""
    parts = {name: entry["fingerprint"] for name, entry in sorted(manifest["outputs"].items())}
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:16]


def requirements() -> list[str]:
    """Pinned requirements of the pyfunc, so MLflow need not import torchvision & co. to infer them."""
    from importlib.metadata import version

    return [
        f"{p}=={version(p)}" for p in ("mlflow", "torch", "transformers", "pandas", "pyarrow", "safetensors")
    ]


def roundtrip(model_uri: str, requests: pd.DataFrame, workdir: Path) -> list[dict]:
    """Load `model_uri` with plain `mlflow.pyfunc.load_model` in a fresh Python process and predict."""
    path = workdir / "roundtrip_requests.json"
    requests.to_json(path, orient="records")
    env = {**os.environ, "MLFLOW_TRACKING_URI": mlflow.get_tracking_uri()}
    done = subprocess.run(
        [sys.executable, "-c", _LOAD_AND_PREDICT, model_uri, str(path)],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"loading {model_uri} in a fresh process failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def log_playlist_model(
    model_dir: Path, catalog_path: Path, input_example: pd.DataFrame, retrieval_k: int, max_new_tokens: int
) -> str:
    """Log a merged model and its catalog as the playlist pyfunc (in the active run); returns the model URI."""
    info = mlflow.pyfunc.log_model(
        name="model",
        python_model=Path(pyfunc_model.__file__),
        artifacts={"model": str(model_dir), "catalog": str(catalog_path)},
        # The pyfunc refuses to load under code that renders another prompt format (`check_prompt_format`).
        model_config={
            "retrieval_k": retrieval_k,
            "max_new_tokens": max_new_tokens,
            "prompt_format": PROMPT_FORMAT,
        },
        signature=SIGNATURE,
        input_example=input_example,
        pip_requirements=requirements(),
        # The pyfunc needs only the ground package: prompts, retrieval, generation, grounding.
        code_paths=[str(Path(pyfunc_model.__file__).parent)],
    )
    return info.model_uri


def register_version(model_uri: str, name: str, alias: str, tags: dict[str, str]) -> str:
    """Register `model_uri` under `name`, tag the version, then point `alias` at it; returns the version.

    The alias moves last, so it never points at a version whose lineage tags are missing.
    """
    version = str(mlflow.register_model(model_uri, name).version)
    client = MlflowClient()
    for key, value in tags.items():
        client.set_model_version_tag(name, version, key, value)
    client.set_registered_model_alias(name, alias, version)
    return version


def final_metrics(recipe: Recipe) -> dict[str, float]:
    """The final policy's metrics from the eval stage's `metrics.json`, or none when eval has not run."""
    path = recipe.out / "eval" / "metrics.json"
    final = recipe.final_model
    if not path.exists():
        return {}
    return {k: float(v) for k, v in json.loads(path.read_text()).get(final, {}).items()}


def main(recipe: Recipe, metrics: dict[str, float] | None = None) -> tuple[str, str]:
    """Register the recipe's final policy (its trained stages' adapters) with `register_policy`."""
    stages = recipe.policy_stages  # base → sft → the preference stage, whichever method ran
    metrics = final_metrics(recipe) if metrics is None else metrics
    return register_policy(
        recipe, [recipe.out / s / "adapter" for s in stages], "+".join(stages) or "base", metrics
    )


def register_policy(
    recipe: Recipe,
    adapters: list[Path],
    stages: str,
    metrics: dict[str, float],
    workdir: Path | None = None,
) -> tuple[str, str]:
    """Register the policy `adapters` make under `register.name` with alias `register.alias`; returns
    (name, version).

    The version is tagged with its lineage (base model, recipe, `stages`, data fingerprint, git commit,
    run), the eval set, primary metric and floors (`floor.<metric>`) that `encore promote` holds it to,
    and its eval `metrics` (`metric.<name>`). `workdir` (default `<out>/register`) holds the merged model.
    """
    prepared = recipe.out / "prepared"
    workdir = workdir or recipe.out / "register"
    manifest = json.loads((prepared / "manifest.json").read_text())
    check_prepared_format(prepared)
    with stage_run(recipe, "register") as run:
        model, tokenizer = load_policy(
            recipe.base_model, adapters, merge_last=True, trust_remote_code=recipe.trust_remote_code
        )
        model.save_pretrained(str(workdir / "model"), safe_serialization=True)
        tokenizer.save_pretrained(str(workdir / "model"))
        catalog = pd.read_parquet(prepared / "validated" / "catalog")
        catalog.to_parquet(workdir / "catalog.parquet", index=False)

        sample = pd.read_parquet(prepared / "eval").sort_values("prompt_id").head(4)
        requests = sample[["request", "history", "candidates"]].copy()
        requests.loc[requests.index[-1], "candidates"] = None  # one request exercises retrieval
        config = {
            "retrieval_k": recipe.registry.retrieval_k,
            "max_new_tokens": recipe.registry.max_new_tokens,
        }
        generator = PlaylistGenerator(model, tokenizer, catalog, **config)
        expected = generator.generate(requests.to_dict("records"))

        model_uri = log_playlist_model(
            workdir / "model", workdir / "catalog.parquet", requests.head(1), **config
        )
        name, alias = recipe.registry.name, recipe.registry.alias
        tags = {
            "base_model": recipe.base_model,
            "recipe": recipe.name,
            "stages": stages,
            "data_fingerprint": data_fingerprint(manifest),
            "git_commit": git_commit(),
            "run_id": run.info.run_id,
            "eval_set": str((prepared / "eval").resolve()),
            "primary_metric": recipe.eval.primary_metric,
            "prompt_format": PROMPT_FORMAT,
            **floor_tags(recipe.registry.floors),
            **{f"metric.{k}": f"{v:.6g}" for k, v in metrics.items()},
        }
        version = register_version(model_uri, name, alias, tags)

        # The version, not the alias: a concurrent pipeline may move the alias before the load.
        uri = f"models:/{name}/{version}"
        loaded = roundtrip(uri, requests, workdir)
        match = [
            a["track_ids"] == b["track_ids"] and a["completion"] == b["completion"]
            for a, b in zip(expected, loaded, strict=True)
        ]
        mlflow.log_metric("register/roundtrip_match", sum(match) / len(match))
        mlflow.log_dict({"expected": expected, "loaded": loaded}, "roundtrip.json")
        if not all(match):
            raise RuntimeError(f"{uri} answers differently after loading: see roundtrip.json")
    return name, version

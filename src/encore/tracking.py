"""MLflow plumbing for the stage entry points: store setup, parent/child runs, recipe params, metrics callback.

Library code never logs; the stages call these helpers. Runs are opened with `mlflow.start_run`
as a context manager, which marks a run FAILED when the stage raises, so no run is left RUNNING
(a process killed with SIGKILL cannot mark itself: its run stays RUNNING until it is resumed).
In a distributed launch only rank 0 talks to MLflow.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import mlflow
import requests
from mlflow.exceptions import MlflowException
from transformers import TrainerCallback, TrainerControl, TrainerState, TrainingArguments

from encore.config import Recipe
from encore.errors import UserFacingError
from encore.train import resume

if TYPE_CHECKING:
    from datasets import Dataset

# MLflow keeps params up to 6,000 characters; longer values go into the resolved recipe artifact.
_MAX_PARAM = 500
# Seconds the preflight waits for a tracking server's /health: it answers in milliseconds when up.
_SERVER_TIMEOUT = 10.0


def flat_params(recipe: Recipe) -> dict[str, str]:
    """The resolved recipe as flat `section.key` → string pairs (secrets left out), for MLflow params."""
    out: dict[str, str] = {}

    def walk(prefix: str, value: Any) -> None:
        if isinstance(value, dict):
            for k, v in value.items():
                walk(f"{prefix}.{k}" if prefix else str(k), v)
        else:
            out[prefix] = str(value)

    walk("", loggable(recipe))
    return out


# Spark's own `spark.redaction.regex` default: settings whose key matches are never shown.
_SECRET_KEY = re.compile(r"secret|password|token|access[.]?key|credential", re.IGNORECASE)


def loggable(recipe: Recipe) -> dict[str, Any]:
    """The resolved recipe as JSON-ready data, fit for MLflow: no hash key, secret Spark settings redacted."""
    data = recipe.model_dump(mode="json", by_alias=True)
    data["prep"].pop("hash_key", None)
    conf = data["prep"]["spark_conf"]
    data["prep"]["spark_conf"] = {
        k: "*********(redacted)" if _SECRET_KEY.search(k) else v for k, v in conf.items()
    }
    return data


def setup(recipe: Recipe) -> str:
    """Point MLflow at the recipe's store (the environment's `MLFLOW_TRACKING_URI` wins) and experiment.

    Fails fast, before any Spark or torch work, with a :class:`UserFacingError` when a tracking
    server does not answer; creates a new SQLite store under a lock so that concurrent runs can share it.
    """
    uri = recipe.tracking_uri
    main = is_main_process()  # the other ranks of a distributed launch never talk to MLflow
    if main and uri.startswith(("http://", "https://")):
        check_server(uri)
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    if main:
        if uri.startswith("sqlite:///"):
            create_sqlite_store(uri)
        activate_experiment(recipe.experiment)
    return uri


def activate_experiment(name: str) -> str:
    """Make experiment ``name`` the active one, creating it if needed; safe when runs start together.

    `mlflow.set_experiment(name)` loses the race it guards against: when another process creates the
    experiment between its lookup and its create, it returns the experiment without activating it,
    and the run goes to `Default` (seen with four pipelines started together on the team server).
    Returns the experiment id.
    """
    client = mlflow.MlflowClient()
    experiment = client.get_experiment_by_name(name)
    if experiment is None:
        try:
            client.create_experiment(name)
        except MlflowException as exc:
            if exc.error_code != "RESOURCE_ALREADY_EXISTS":
                raise
        experiment = client.get_experiment_by_name(name)
    if experiment is None:  # created, then deleted for good, in between
        raise UserFacingError(f"the MLflow experiment {name!r} vanished while it was being created")
    return mlflow.set_experiment(experiment_id=experiment.experiment_id).experiment_id


def check_server(uri: str, timeout: float = _SERVER_TIMEOUT) -> None:
    """Raise a one-line :class:`UserFacingError` unless the tracking server at ``uri`` answers `GET /health`.

    Without it, MLflow's client retries the first request for about 4 minutes and then ends in a long
    traceback. A TLS or auth refusal still proves that a server listens: MLflow reports those itself.
    """
    url = f"{uri.rstrip('/')}/health"
    try:
        answer = requests.get(url, timeout=timeout)
    except requests.exceptions.SSLError:
        return
    except requests.exceptions.Timeout as exc:
        raise _server_error(uri, f"no answer to GET /health within {timeout:.0f} s") from exc
    except requests.exceptions.RequestException as exc:  # refused, unknown host, unreachable network
        raise _server_error(uri, "cannot connect") from exc
    if answer.status_code >= 500:
        raise _server_error(uri, f"GET /health answered HTTP {answer.status_code}")


def _server_error(uri: str, reason: str) -> UserFacingError:
    return UserFacingError(
        f"the MLflow tracking server {uri} does not answer ({reason}); nothing was started. "
        "Start it (scripts/team-server.sh start) or set MLFLOW_TRACKING_URI / tracking.uri "
        "to a running one: see docs/team-setup.md"
    )


def create_sqlite_store(uri: str) -> None:
    """Create (or migrate) the SQLite store at ``uri`` once, holding a lock file beside it.

    MLflow creates a new store's tables on first use with no lock: runs started together on one new
    file all migrate it at once and crash (`table _alembic_tmp_… already exists`), leaving it
    half-migrated. Under `<file>.lock` the first run creates it and the others find it ready.
    """
    db = Path(uri.removeprefix("sqlite:///")).expanduser()
    db.parent.mkdir(parents=True, exist_ok=True)
    with open(db.with_name(db.name + ".lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        client = mlflow.MlflowClient(uri, uri)
        client.search_experiments(max_results=1)  # the tracking store creates its tables …
        client.search_registered_models(max_results=1)  # … and so does the registry store


def is_main_process() -> bool:
    """False on every rank but 0 of a distributed launch (torchrun, accelerate and TorchDistributor set RANK)."""
    return int(os.environ.get("RANK", "0")) == 0


def git_commit() -> str:
    """The commit of the working tree encore runs from (with `-dirty` when it has changes), or `unknown`."""
    root = Path(__file__).resolve().parents[2]
    try:
        sha = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return f"{sha}-dirty" if dirty else sha


def log_recipe(recipe: Recipe) -> None:
    """The resolved recipe: short values as params, the whole of it as `recipe.json`; lineage tags."""
    params = flat_params(recipe)
    mlflow.log_params({k: v for k, v in params.items() if len(v) <= _MAX_PARAM})
    mlflow.log_dict(loggable(recipe), "recipe.json")
    mlflow.set_tags({"encore.git_commit": git_commit(), "encore.base_model": recipe.base_model})


@contextmanager
def stage_run(recipe: Recipe, stage: str) -> Iterator[mlflow.ActiveRun]:
    """A child run of the active pipeline run, or a top-level run when a stage is launched alone."""
    nested = mlflow.active_run() is not None
    with mlflow.start_run(run_name=stage, nested=nested) as run:
        mlflow.set_tag("encore.stage", stage)
        if not nested:
            log_recipe(recipe)
        yield run


@contextmanager
def training_run(
    recipe: Recipe, stage: str, stage_dir: Path | None = None
) -> Iterator[mlflow.ActiveRun | None]:
    """`stage_run` for a training stage: resumable, and None on the ranks that must not log.

    Rank 0 (or the only process) opens the stage's run and records it in `<out>/<stage>/run.json`
    with its status. When that record says the run did not finish and a checkpoint exists (or
    `--resume` asks), training continues from the last checkpoint in the same MLflow run, tagged
    `encore.resumed_from_step` (see `encore.train.resume`). Every other rank makes the same
    decision from the same files, yields None and leaves MLflow alone. `stage_dir` (default `<out>/<stage>`)
    holds the record and checkpoints: a flywheel round trains its stage under its own directory.
    """
    stage_dir = recipe.out / stage if stage_dir is None else stage_dir
    point = resume.plan(stage_dir, resume.requested())
    if not is_main_process():
        with resume.active(point):
            yield None
        return
    if point.checkpoint is None:
        resume.clear_stale_checkpoints(stage_dir)
    if point.run_id is not None and _missing_run(point.run_id):
        point = resume.ResumePoint(None, point.checkpoint, point.step)  # another store: a new run
    nested = mlflow.active_run() is not None
    run_name = stage if point.run_id is None else None
    with mlflow.start_run(run_id=point.run_id, run_name=run_name, nested=nested) as run, resume.active(point):
        resume.write_record(stage_dir, run.info.run_id, "RUNNING", point)
        if point.run_id is None:  # a resumed run has its params and tags already
            mlflow.set_tag("encore.stage", stage)
            if not nested:
                log_recipe(recipe)
        if point.checkpoint is not None:
            mlflow.set_tags({"encore.resumed": "true", "encore.resumed_from_step": str(point.step)})
        try:
            yield run
        except BaseException:
            resume.write_record(stage_dir, run.info.run_id, "FAILED", point)
            raise
        resume.write_record(stage_dir, run.info.run_id, "FINISHED", point)


def _missing_run(run_id: str) -> bool:
    try:
        mlflow.get_run(run_id)
    except mlflow.exceptions.MlflowException:
        return True
    return False


def log_manifest_metrics(manifest: dict[str, Any]) -> None:
    """Counts from a data_prep manifest as `prep/…` metrics."""
    metrics: dict[str, float] = {}
    for name, entry in manifest.get("inputs", {}).items():
        for key in ("rows_in", "rows_out", "rows_quarantined"):
            metrics[f"prep/{name}/{key}"] = float(entry[key])
        for reason, count in entry.get("quarantined_by_reason", {}).items():
            metrics[f"prep/{name}/quarantined/{reason.replace(':', '.')}"] = float(count)
    for name, entry in manifest.get("outputs", {}).items():
        metrics[f"prep/{name}/rows"] = float(entry["rows"])
    for strategy, count in manifest.get("strategy_counts", {}).items():
        metrics[f"prep/pairs/strategy/{strategy}"] = float(count)
    mlflow.log_metrics(metrics)


def log_training_data(rows: Dataset, prepared: Path, name: str) -> None:
    """Log a stage's training rows as an MLflow dataset (context ``training``), as loaded from ``prepared``.

    A Hugging Face dataset: MLflow takes its digest and schema from the first 10,000 rows and its
    row count from all, so logging stays cheap at any size (a pandas dataset infers the schema of
    the nested message columns over every row: minutes for a few hundred thousand pairs).
    """
    from mlflow.data.huggingface_dataset import from_huggingface

    files = sorted(str(p) for p in prepared.glob("*.parquet"))
    dataset = from_huggingface(rows, path="parquet", data_files=files, name=name)
    mlflow.log_input(dataset, context="training")


class MlflowMetricsCallback(TrainerCallback):
    """Trainer logs as MLflow metrics with stable names: `train/<key>` and `eval/<key>`.

    Only the main process logs (the trainer's `is_world_process_zero`).
    """

    def on_log(
        self,
        args: TrainingArguments,
        state: TrainerState,
        control: TrainerControl,
        logs: dict[str, float] | None = None,
        **kwargs: Any,
    ) -> None:
        if not state.is_world_process_zero or not logs:
            return
        metrics = {}
        for key, value in logs.items():
            if not isinstance(value, int | float):
                continue
            name = f"eval/{key.removeprefix('eval_')}" if key.startswith("eval_") else f"train/{key}"
            metrics[name] = float(value)
        mlflow.log_metrics(metrics, step=state.global_step)


def write_json(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2, sort_keys=True))

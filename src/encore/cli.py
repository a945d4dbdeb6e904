"""The `encore` command line: run a pipeline, one stage, validate a recipe, or simulate feedback logs."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from contextlib import contextmanager
from enum import StrEnum
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table

from encore.config import Recipe, RecipeError, load_recipe

if TYPE_CHECKING:
    from mlflow import MlflowClient

    from encore.progress import Progress

app = typer.Typer(help="encore: preference-tuned playlist LLMs from logged feedback.", no_args_is_help=True)
train_app = typer.Typer(help="Run one training stage.", no_args_is_help=True)
app.add_typer(train_app, name="train")
console = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)


def _stopped(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)


@app.callback()
def _every_command() -> None:
    # A stopped job (SIGTERM from `kill`, a scheduler or `timeout`) unwinds like an error, so its
    # MLflow runs end FAILED and a training stage's record says so, instead of staying RUNNING.
    signal.signal(signal.SIGTERM, _stopped)


RecipeArg = Annotated[Path, typer.Argument(help="A recipe YAML file, e.g. recipes/smoke/pipeline.yaml")]
SetOpt = Annotated[
    list[str] | None, typer.Option("--set", help="Override a value: section.key=value (repeatable)")
]
VerboseOpt = Annotated[
    bool,
    typer.Option(
        "--verbose",
        "-v",
        help="Show the libraries' output (warnings, Spark, training logs) here, not in <output_dir>/logs/",
    ),
]


def _load(path: Path, overrides: list[str] | None) -> Recipe:
    try:
        return load_recipe(path, overrides or [])
    except RecipeError as e:
        err.print(f"[bold red]recipe error:[/] {e}", highlight=False)
        raise typer.Exit(2) from None


@app.command()
def validate(recipe: RecipeArg, set_: SetOpt = None) -> None:
    """Check a recipe (keys, types, TRL args, input files) without running anything."""
    r = _load(recipe, set_)
    console.print(f"[green]ok[/] {recipe}: recipe {r.name!r}, base model {r.base_model}, output {r.out}")


@app.command()
def pipeline(recipe: RecipeArg, set_: SetOpt = None, verbose: VerboseOpt = False) -> None:
    """Prep → SFT → preference (dpo|kto|orpo|simpo|rlhf) → eval → register, one parent MLflow run."""
    r = _load(recipe, set_)
    with _reported(r), _progress(r, "pipeline", verbose) as progress:
        from encore import pipeline as pipeline_  # imported here: importing the libraries may warn

        result = pipeline_.main(r, progress)
    from encore.summary import print_summary

    registered = None
    if result.model_name and result.model_version and result.alias:
        registered = (result.model_name, result.model_version, result.alias)
    print_summary(
        console,
        run_id=result.run_id,
        seconds=result.seconds,
        tracking_uri=result.tracking_uri,
        out=r.out,
        models=r.eval_models,
        final=r.policy_stages[-1] if r.policy_stages else "base",
        registered=registered,
        log=progress.log,
    )


@contextmanager
def _reported(r: Recipe) -> Iterator[None]:
    """Errors the user can act on (a full disk, an unreachable tracking server) as one line, exit 1."""
    from encore.errors import UserFacingError, disk_full_reported
    from encore.prompts import PromptFormatError

    try:
        with disk_full_reported(r.out):
            yield
    except (UserFacingError, PromptFormatError) as e:
        err.print(f"[bold red]error:[/] {e}", highlight=False)
        raise typer.Exit(1) from None


@contextmanager
def _progress(r: Recipe, name: str, verbose: bool) -> Iterator[Progress]:
    """Stage lines here; unless verbose, everything else in `<out>/logs/<name>.log`, logged to the run it ends.

    A launched process (`--launcher`) is always verbose: its output is its launcher's log.
    """
    import os
    import shutil
    import tempfile

    from encore.launch import LAUNCHED_ENV
    from encore.progress import Progress, quiet

    if verbose or os.environ.get(LAUNCHED_ENV):
        yield Progress(console)
        return
    log = r.out / "logs" / f"{name}.log"
    # A command that stops before any work (a bad tracking URI) must leave no output directory behind:
    # until the output directory exists, the log is written in the temp dir and moved in at the end.
    staging = (
        log if r.out.exists() else Path(tempfile.gettempdir()) / f"encore-{r.name}-{name}-{os.getpid()}.log"
    )
    before, failed = None, False
    try:
        with quiet(staging) as terminal:
            before = _last_run_id()  # a command run in this process before (tests) ended that one
            yield Progress(Console(file=terminal, soft_wrap=True), log)
    except BaseException:
        failed = True
        raise
    finally:
        if staging != log and r.out.exists():
            log.parent.mkdir(parents=True, exist_ok=True)
            shutil.move(staging, log)
            staging = log
        if failed:
            err.print(f"the full output: {staging}", highlight=False)
        _log_output(staging, before)


def _last_run_id() -> str | None:
    """The run this process ended last (none is active between commands), or None."""
    import mlflow

    run = mlflow.last_active_run()
    return None if run is None else run.info.run_id


def _log_output(log: Path, before: str | None) -> None:
    """Log the command's log file to the run it ended last (the pipeline's, or the stage's), if it ended one."""
    import mlflow

    try:
        run_id = _last_run_id()
        if run_id is not None and run_id != before:
            mlflow.MlflowClient().log_artifact(run_id, str(log), "logs")
    except Exception as e:  # the command's own outcome (or error) matters more than its log
        err.print(f"[yellow]warning:[/] {log} was not logged to MLflow: {e}", highlight=False)


def _stage(recipe: Path, set_: list[str] | None, stage: str, verbose: bool = False) -> None:
    r = _load(recipe, set_)
    from encore.summary import noted_stage

    with _reported(r), _progress(r, stage, verbose) as progress, noted_stage(progress, stage):
        _run_stage(r, stage)


def _run_stage(r: Recipe, stage: str) -> None:
    import importlib

    from encore import tracking

    tracking.setup(r)
    # One module per stage under encore.stages (`eval` lives in evaluate.py), imported only when it runs:
    # orpo and simpo import trl.experimental.
    module = importlib.import_module(f"encore.stages.{'evaluate' if stage == 'eval' else stage}")
    module.main(r)


@app.command("prep")
def prep_cmd(recipe: RecipeArg, set_: SetOpt = None, verbose: VerboseOpt = False) -> None:
    """Run the data_prep Spark job alone."""
    _stage(recipe, set_, "prep", verbose)


class Launcher(StrEnum):
    """Where a training stage runs: this process, `accelerate launch`, or Spark's TorchDistributor."""

    none = "none"
    accelerate = "accelerate"
    spark = "spark"


ResumeOpt = Annotated[
    bool | None,
    typer.Option(
        "--resume/--no-resume",
        help="Continue from the last checkpoint in the same MLflow run, or start over "
        "(default: continue when the last run did not finish)",
    ),
]
LauncherOpt = Annotated[Launcher, typer.Option(help="Run on several processes (docs/scaling.md)")]
AccelerateConfigOpt = Annotated[
    Path | None,
    typer.Option(help="accelerate config for --launcher accelerate, e.g. recipes/accelerate/cpu_ddp.yaml"),
]
ProcessesOpt = Annotated[
    int | None, typer.Option(help="Processes (default: the accelerate config's; 2 for --launcher spark)")
]


def _train(
    recipe: Path,
    set_: list[str] | None,
    stage: str,
    resume: bool | None,
    launcher: Launcher,
    accelerate_config: Path | None,
    num_processes: int | None,
    verbose: bool = False,
) -> None:
    """Run a training stage in this process, or the same command on several (encore.launch)."""
    import os

    from encore import launch
    from encore.train.resume import RESUME_ENV

    if resume is not None:  # read by tracking.training_run, here and in every launched process
        os.environ[RESUME_ENV] = "1" if resume else "0"
    if launcher is Launcher.none:
        _stage(recipe, set_, stage, verbose)
        return
    if os.environ.get(launch.LAUNCHED_ENV):
        err.print(
            f"[bold red]error:[/] already launched by {os.environ[launch.LAUNCHED_ENV]}: drop --launcher"
        )
        raise typer.Exit(2)
    r = _load(recipe, set_)  # a bad recipe fails before any process starts
    # An absolute recipe path: a Spark cluster runs the command in its executors' own directories.
    argv = launch.stage_argv(stage, recipe.resolve(), set_ or [], resume)
    if launcher is Launcher.accelerate:
        if accelerate_config is None:
            err.print(
                "[bold red]error:[/] --launcher accelerate needs --accelerate-config (recipes/accelerate/)"
            )
            raise typer.Exit(2)
        status = launch.run_accelerate(accelerate_config, argv, num_processes)
        if status:
            raise typer.Exit(status)
        return
    with _reported(r):
        launch.run_spark(argv, num_processes or 2, r.prep.spark_master)


# `encore train <stage>`: one command per stage, the same options for every stage.
TRAIN_COMMANDS = {
    "sft": "Train the SFT adapter (needs the prep outputs).",
    "dpo": "Train the DPO adapter on top of the SFT adapter (loss variants: dpo.args.loss_type).",
    "kto": "Train the KTO adapter on the unpaired rows, on top of the SFT adapter.",
    "orpo": "Train the ORPO adapter (reference-free; on the base when sft.enabled is false).",
    "simpo": "Train the SimPO adapter (TRL's CPOTrainer with loss_type simpo; reference-free).",
    "reward": "Train the reward model (sequence-classification head + LoRA) on the preference pairs.",
    "grpo": "Train the GRPO adapter against the reward model and the programmatic rewards (grpo.rewards).",
}


def _train_command(stage: str, doc: str) -> None:
    def command(
        recipe: RecipeArg,
        set_: SetOpt = None,
        resume: ResumeOpt = None,
        launcher: LauncherOpt = Launcher.none,
        accelerate_config: AccelerateConfigOpt = None,
        num_processes: ProcessesOpt = None,
        verbose: VerboseOpt = False,
    ) -> None:
        _train(recipe, set_, stage, resume, launcher, accelerate_config, num_processes, verbose)

    command.__doc__ = doc
    train_app.command(stage)(command)


for _stage_name, _doc in TRAIN_COMMANDS.items():
    _train_command(_stage_name, _doc)


@app.command()
def collect(
    recipe: RecipeArg,
    model: Annotated[
        str, typer.Option(help="The policy that answers: sft, a preference stage, or base")
    ] = "sft",
    samples: Annotated[int, typer.Option(help="Answers per request")] = 1,
    temperature: Annotated[float, typer.Option(help="0: greedy; above 0: seeded sampling")] = 0.0,
    max_prompts: Annotated[int | None, typer.Option(help="Answer only the first N training requests")] = None,
    set_: SetOpt = None,
) -> None:
    """A feedback round on a trained policy: the simulated users react to its playlists (on-policy logs)."""
    r = _load(recipe, set_)
    with _reported(r):
        from encore import tracking
        from encore.stages.collect import main as collect_

        tracking.setup(r)
        out = collect_(r, model=model, samples=samples, temperature=temperature, max_prompts=max_prompts)
    console.print(f"logs with the round: {out}")
    console.print(
        "prep them with: encore prep RECIPE --set data.source=logs "
        + " ".join(
            f"--set data.logs.{n}={out / n}.jsonl"
            for n in ("responses", "interactions", "catalog", "intents")
        )
    )


@app.command("eval")
def eval_cmd(recipe: RecipeArg, set_: SetOpt = None, verbose: VerboseOpt = False) -> None:
    """Evaluate base / SFT / the preference policy on the held-out requests."""
    _stage(recipe, set_, "eval", verbose)


@app.command("register")
def register_cmd(recipe: RecipeArg, set_: SetOpt = None, verbose: VerboseOpt = False) -> None:
    """Register the trained policy as an MLflow pyfunc with the recipe's alias."""
    _stage(recipe, set_, "register", verbose)


@app.command("export")
def export_cmd(
    recipe: RecipeArg,
    set_: SetOpt = None,
    out: Annotated[
        Path | None, typer.Option(help="Directory for the merged model (default <output_dir>/export)")
    ] = None,
) -> None:
    """Write the final policy (base + SFT + preference adapters) as merged full weights in safetensors."""
    from encore import tracking
    from encore.stages import export

    r = _load(recipe, set_)
    with _reported(r):
        tracking.setup(r)
        console.print(f"merged model: {export.main(r, out)}", highlight=False)


@app.command()
def simulate(
    out: Annotated[Path, typer.Option(help="Directory for the JSONL logs")],
    seed: int = 0,
    n_users: int = 60,
    sessions_per_user: int = 3,
) -> None:
    """Write simulated responses, interactions, intents and catalog logs."""
    from encore.simulator import simulate as simulate_

    for name, path in simulate_(out, seed=seed, n_users=n_users, sessions_per_user=sessions_per_user).items():
        console.print(f"{name}: {path}")


TrackingOpt = Annotated[
    str,
    typer.Option(envvar="MLFLOW_TRACKING_URI", help="MLflow tracking (and registry) URI"),
]


def _client(tracking_uri: str) -> MlflowClient:
    import mlflow

    mlflow.set_tracking_uri(tracking_uri)
    mlflow.set_registry_uri(tracking_uri)
    return mlflow.MlflowClient(tracking_uri, tracking_uri)


@app.command()
def promote(
    name: Annotated[str, typer.Argument(help="Registered model name, e.g. playlist-generator")],
    from_: Annotated[str, typer.Option("--from", help="Alias of the candidate version")] = "candidate",
    to: Annotated[str, typer.Option("--to", help="Alias to move when the candidate wins")] = "champion",
    metric: Annotated[
        str | None,
        typer.Option(help="Primary metric (default: the version's primary_metric tag, else fulfillment)"),
    ] = None,
    margin: Annotated[
        float, typer.Option(help="How much better the candidate must be on the primary metric")
    ] = 0.01,
    tolerance: Annotated[
        float, typer.Option(help="How much worse a guardrail may be before it counts")
    ] = 0.0,
    min_z: Annotated[
        float,
        typer.Option(
            help="Also require the paired gain on the primary metric to be this many standard errors"
        ),
    ] = 0.0,
    floor: Annotated[
        list[str] | None, typer.Option(help="Override a guardrail floor: metric=value (repeatable)")
    ] = None,
    eval_set: Annotated[
        Path | None, typer.Option(help="Eval rows (Parquet; default: the eval set of the candidate's run)")
    ] = None,
    max_requests: Annotated[int | None, typer.Option(help="Evaluate on the first N requests only")] = None,
    report: Annotated[
        Path | None, typer.Option(help="Write the metrics and the decision as JSON here")
    ] = None,
    tracking_uri: TrackingOpt = "sqlite:///mlruns/mlflow.db",
) -> None:
    """Move TO (champion) to the FROM (candidate) version only when it wins on the same eval set.

    Exits 0 when promoted, 1 when refused, 2 on a usage error. The rule: docs/evaluation.md.
    """
    import json

    from mlflow.exceptions import MlflowException

    from encore import promote as gate
    from evaluation.direction import direction
    from evaluation.paired import paired_delta

    client = _client(tracking_uri)
    try:
        candidate = client.get_model_version_by_alias(name, from_)
    except MlflowException:
        err.print(f"[bold red]error:[/] {name}@{from_} does not exist in {tracking_uri}", highlight=False)
        raise typer.Exit(2) from None
    version = str(candidate.version)
    champion_version = gate.alias_version(client, name, to)
    path = eval_set or candidate.tags.get("eval_set")
    if not path or not Path(path).exists():
        err.print(
            f"[bold red]error:[/] no eval set: {path or 'the version has no eval_set tag'}; pass --eval-set"
        )
        raise typer.Exit(2)
    # The defaults, then the version's own (its recipe's `register.floors`), then --floor.
    floors = {**gate.FLOORS, **gate.version_floors(candidate.tags)}
    try:
        floors.update(gate.parse_floor(item) for item in floor or [])
    except ValueError as e:
        err.print(f"[bold red]error:[/] --floor {e}")
        raise typer.Exit(2) from None
    primary = metric or candidate.tags.get("primary_metric") or "fulfillment"
    rows = gate.eval_rows(path, max_requests)
    console.print(f"evaluating {name} v{version} (@{from_}) on {len(rows)} requests from {path}")
    cand_result, catalog = gate.evaluate_version(f"models:/{name}/{version}", rows)
    champ_metrics = paired = None
    if champion_version is not None:
        console.print(f"evaluating {name} v{champion_version} (@{to}) on the same requests")
        champ_result, _ = gate.evaluate_version(f"models:/{name}/{champion_version}", rows, catalog)
        champ_metrics = champ_result.metrics
        higher = direction(primary) or 1
        paired = paired_delta(champ_result.per_row, cand_result.per_row, primary, higher=higher)
    decision = gate.decide(
        cand_result.metrics,
        champ_metrics,
        primary=primary,
        margin=margin,
        floors=floors,
        tolerance=tolerance,
        paired=paired,
        min_z=min_z,
    )
    table = Table(title=f"promote {name} v{version} → @{to}")
    for column in (
        "rule",
        "metric",
        f"v{version} (@{from_})",
        f"v{champion_version} (@{to}) or floor" if champion_version else "floor",
        "pass",
    ):
        table.add_column(column)
    for c in decision.checks:
        ref = "–" if c.reference is None else f"{c.reference:.3f}"
        cand = "missing" if c.candidate is None else f"{c.candidate:.3f}"
        table.add_row(c.rule, c.metric, cand, ref, "[green]yes[/]" if c.passed else "[red]no[/]")
    console.print(table)
    if paired is not None:
        console.print(f"paired {primary}, candidate − champion on the same requests: {paired.describe()}")
    outcome = {
        "name": name, "candidate": version, "champion": champion_version, "eval_set": str(path),
        "n_requests": len(rows), "primary": primary, "margin": margin, "min_z": min_z, "floors": floors,
        "paired": None if paired is None else {"mean": paired.mean, "stderr": paired.stderr, "n": paired.n},
        "promoted": decision.promote,
        "reasons": decision.reasons, "candidate_metrics": cand_result.metrics, "champion_metrics": champ_metrics,
    }  # fmt: skip
    verdict = "promoted" if decision.promote else "refused: " + "; ".join(decision.reasons)
    against = f" against v{champion_version}" if champion_version else " (no champion)"
    # The record goes on the version before any alias moves: an alias never points at an unrecorded decision.
    client.set_model_version_tag(name, version, f"promotion.{to}", (verdict + against)[:4000])
    if decision.promote:
        try:
            gate.move_alias(client, name, to, version, champion_version)
        except (gate.AliasConflict, MlflowException) as e:
            err.print(f"[bold red]not promoted:[/] {e}; no alias was moved", highlight=False)
            raise typer.Exit(1) from None
    if report:
        report.parent.mkdir(parents=True, exist_ok=True)
        report.write_text(json.dumps(outcome, indent=2, sort_keys=True))
    if not decision.promote:
        console.print(
            f"[bold red]not promoted:[/] @{to} stays on {f'v{champion_version}' if champion_version else '(none)'}"
        )
        for reason in decision.reasons:
            console.print(f"  - {reason}", highlight=False)
        raise typer.Exit(1)
    was = f" (was v{champion_version}, now @previous-{to})" if champion_version else " (first champion)"
    console.print(f"[bold green]promoted:[/] {name}@{to} → v{version}{was}", highlight=False)


@app.command()
def generate(
    request: Annotated[str, typer.Argument(help="What the listener asks for")],
    model: Annotated[str, typer.Option(help="A model URI, e.g. models:/playlist-generator@champion")],
    history: Annotated[
        list[str] | None, typer.Option(help="An earlier request (repeatable, oldest first)")
    ] = None,
    candidate: Annotated[
        list[str] | None,
        typer.Option(help="A catalog track id to choose from (repeatable; default: retrieve)"),
    ] = None,
    tracking_uri: TrackingOpt = "sqlite:///mlruns/mlflow.db",
) -> None:
    """Ask a registered model for a playlist and print it."""
    import os

    import mlflow
    import pandas as pd
    from transformers.utils import logging as transformers_logging

    # One model to download and load: no progress bars above the playlist.
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    transformers_logging.disable_progress_bar()
    _client(tracking_uri)
    loaded = mlflow.pyfunc.load_model(model)
    frame = pd.DataFrame(
        {"request": [request], "history": [history or []], "candidates": [candidate or None]}
    )
    answer = loaded.predict(frame).iloc[0]
    if not len(answer["track_ids"]):
        console.print(
            f"no playlist parsed; the model answered: {answer['completion'][:300]!r}", highlight=False
        )
        return
    table = Table(title=f"{request}  ({model})")
    for column in ("#", "track id", "artist", "title", "grounded"):
        table.add_column(column)
    rows = zip(answer["track_ids"], answer["artists"], answer["titles"], answer["grounded"], strict=True)
    for i, (track_id, artist, title, grounded) in enumerate(rows, 1):
        table.add_row(str(i), track_id or "–", artist, title, "yes" if grounded else "[red]no[/]")
    console.print(table)


@app.command()
def serve(
    model: Annotated[str, typer.Argument(help="A model URI, e.g. models:/playlist-generator@candidate")],
    port: Annotated[int, typer.Option(help="Port (5001: `mlflow ui` takes 5000)")] = 5001,
    host: Annotated[
        str, typer.Option(help="Interface to listen on (0.0.0.0: every interface)")
    ] = "127.0.0.1",
    tracking_uri: TrackingOpt = "sqlite:///mlruns/mlflow.db",
) -> None:
    """Serve a registered model over HTTP, `mlflow models serve` in this environment: POST /invocations."""
    import os
    import sys
    import sysconfig

    # MLflow starts the scoring server as `uvicorn`, looked up on PATH: without this environment's bin
    # directory there (a venv not activated, `.venv/bin/mlflow models serve …`) it fails with
    # `uvicorn: not found`. That directory goes first.
    scripts = sysconfig.get_path("scripts")
    env = {
        **os.environ,
        "PATH": os.pathsep.join([scripts, os.environ.get("PATH", "")]),
        "MLFLOW_TRACKING_URI": tracking_uri,
        "MLFLOW_REGISTRY_URI": tracking_uri,
    }
    argv = [sys.executable, "-m", "mlflow", "models", "serve", "-m", model, "--env-manager", "local"]
    argv += ["--host", host, "--port", str(port)]
    env.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")  # one download of the model: no bar
    err.print(f"serving {model} on http://{host}:{port}/invocations (Ctrl-C stops it)", highlight=False)
    # MLflow's process in place of this one: signals (Ctrl-C, a test's SIGTERM) go straight to it.
    os.execve(sys.executable, argv, env)


@app.command()
def compare(
    refs: Annotated[
        list[str],
        typer.Argument(
            help="Run ids, runs:/ID, models:/NAME@ALIAS or models:/NAME/VERSION; the first is the baseline"
        ),
    ],
    html: Annotated[Path | None, typer.Option(help="Also write a self-contained HTML page here")] = None,
    samples: Annotated[int, typer.Option(help="Sample requests shown side by side")] = 5,
    tracking_uri: TrackingOpt = "sqlite:///mlruns/mlflow.db",
) -> None:
    """Compare runs or registered models: differing params, metric deltas, per-category table, samples."""
    import os

    from encore import compare as compare_
    from encore import compare_view

    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")  # one download per run: no bars
    client = _client(tracking_uri)
    views = [compare_.collect(client, ref, samples) for ref in refs]
    for table in compare_view.rich_tables(views):
        console.print(table)
    if html:
        html.parent.mkdir(parents=True, exist_ok=True)
        html.write_text(compare_view.html_page(views))
        console.print(f"html: {html}", highlight=False)


class DatasetKind(StrEnum):
    """The public datasets `encore ingest` can map onto the canonical logs."""

    cpcd = "cpcd"
    mssd = "mssd"
    mpd = "mpd"


@app.command()
def ingest(
    kind: Annotated[DatasetKind, typer.Argument(help="Which dataset INPUT holds")],
    input: Annotated[Path, typer.Argument(help="The dataset file or directory (see docs/adapters.md)")],
    out: Annotated[Path, typer.Option(help="Output directory: responses, interactions, catalog, manifest")],
    spark_master: Annotated[str, typer.Option(help="Spark master URL")] = "local[*]",
) -> None:
    """Map a public dataset (CPCD, MSSD, MPD) onto the canonical raw logs that `encore prep` reads."""
    from data_prep.adapters import ingest as ingest_
    from data_prep.session import get_spark
    from data_prep.validation import InputSchemaError

    # The session is not stopped here: the process ends with the command, and a caller that shares
    # the session (a test, a notebook) keeps it.
    spark = get_spark(spark_master, app_name=f"encore-ingest-{kind.value}")
    try:
        manifest = ingest_(spark, kind.value, str(input), str(out))
    except InputSchemaError as e:
        err.print(f"[bold red]input error:[/] {e}", highlight=False)
        raise typer.Exit(2) from None
    table = Table(title=f"encore ingest {kind.value} → {out}")
    for column in ("input", "rows in", "rows out", "quarantined", "reasons"):
        table.add_column(column, justify="left" if column in ("input", "reasons") else "right")
    for name, entry in manifest["inputs"].items():
        reasons = ", ".join(f"{r} {n}" for r, n in entry["quarantined_by_reason"].items())
        table.add_row(
            name, str(entry["rows_in"]), str(entry["rows_out"]), str(entry["rows_quarantined"]), reasons
        )
    console.print(table)
    outputs = Table(title="outputs", show_header=False)
    for name, entry in manifest["outputs"].items():
        outputs.add_row(name, str(entry["rows"]))
    for name, value in manifest["stats"].items():
        outputs.add_row(f"stats: {name}", str(value))
    console.print(outputs)


if __name__ == "__main__":
    app()

"""The `encore` command line: run a pipeline, one stage, validate a recipe, or simulate feedback logs."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from contextlib import contextmanager
from enum import StrEnum
from pathlib import Path
from types import FrameType
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from encore import cli_registry
from encore.config import Recipe, RecipeError, load_recipe
from encore.methods import METHODS
from encore.progress import command_output

app = typer.Typer(help="encore: preference-tuned playlist LLMs from logged feedback.", no_args_is_help=True)
train_app = typer.Typer(help="Run one training stage.", no_args_is_help=True)
app.add_typer(train_app, name="train")
app.add_typer(cli_registry.app)  # promote, compare, generate, serve
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
    with _reported(r), command_output(r.out, r.name, "pipeline", verbose, console, err) as progress:
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
        final=r.final_model,
        registered=registered,
        log=progress.log,
    )


@contextmanager
def _reported(r: Recipe) -> Iterator[None]:
    """Errors the user can act on (a full disk, an unreachable tracking server) as one line, exit 1."""
    from encore.errors import UserFacingError, disk_full_reported
    from playlist.prompts import PromptFormatError

    try:
        with disk_full_reported(r.out):
            yield
    except (UserFacingError, PromptFormatError) as e:
        err.print(f"[bold red]error:[/] {e}", highlight=False)
        raise typer.Exit(1) from None


def _stage(recipe: Path, set_: list[str] | None, stage: str, verbose: bool = False) -> None:
    r = _load(recipe, set_)
    from encore.summary import noted_stage

    with (
        _reported(r),
        command_output(r.out, r.name, stage, verbose, console, err) as progress,
        noted_stage(progress, stage),
    ):
        _run_stage(r, stage)


def _run_stage(r: Recipe, stage: str) -> None:
    from encore import tracking
    from encore.stages import run_stage

    tracking.setup(r)
    run_stage(r, stage)


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
    if launcher is Launcher.accelerate:
        if accelerate_config is None:
            err.print(
                "[bold red]error:[/] --launcher accelerate needs --accelerate-config (recipes/accelerate/)"
            )
            raise typer.Exit(2)
        argv = launch.stage_argv(stage, recipe.resolve(), set_ or [], resume)
        status = launch.run_accelerate(accelerate_config, argv, num_processes)
        if status:
            raise typer.Exit(status)
        return
    with _reported(r):
        # An absolute recipe path: a Spark cluster runs the stage in its executors' own directories.
        launch.run_spark(stage, recipe.resolve(), set_ or [], resume, num_processes or 2, r.prep.spark_master)


# `encore train <stage>`: one command per training method (encore.methods), the same options for each.
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


for _method in METHODS:
    _train_command(_method.name, _method.summary)


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


@app.command()
def flywheel(recipe: RecipeArg, set_: SetOpt = None) -> None:
    """On-policy rounds ranked by a reward model learnt from the logs, against SFT given the same steps."""
    r = _load(recipe, set_)
    with _reported(r):
        from encore import tracking
        from encore.flywheel.loop import run
        from encore.flywheel.scoring import summary_table

        tracking.setup(r)
        results = run(r)
    console.print(summary_table(results, f"round-{r.flywheel.rounds}"))


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
    from playlist.simulator import simulate as simulate_

    for name, path in simulate_(out, seed=seed, n_users=n_users, sessions_per_user=sessions_per_user).items():
        console.print(f"{name}: {path}")


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

"""The `encore` command line: run a pipeline, one stage, validate a recipe, or simulate feedback logs."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from encore.config import Recipe, RecipeError, load_recipe

app = typer.Typer(help="encore: preference-tuned playlist LLMs from logged feedback.", no_args_is_help=True)
train_app = typer.Typer(help="Run one training stage.", no_args_is_help=True)
app.add_typer(train_app, name="train")
console = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)

RecipeArg = Annotated[Path, typer.Argument(help="A recipe YAML file, e.g. recipes/smoke/pipeline.yaml")]
SetOpt = Annotated[
    list[str] | None, typer.Option("--set", help="Override a value: section.key=value (repeatable)")
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
def pipeline(recipe: RecipeArg, set_: SetOpt = None) -> None:
    """Prep → SFT → preference (dpo|kto|orpo|simpo|rlhf) → eval → register, one parent MLflow run."""
    from encore import pipeline as pipeline_

    r = _load(recipe, set_)
    with _reported(r):
        result = pipeline_.main(r)
    table = Table(title="encore pipeline", show_header=False)
    table.add_row("run id", result.run_id)
    for key, value in sorted(result.metrics.items()):
        table.add_row(key, f"{value:.3f}")
    if result.model_name:
        table.add_row("registered", f"{result.model_name} version {result.model_version} @{result.alias}")
    table.add_row("wall time", f"{result.seconds:.0f} s")
    console.print(table)
    # Commands outside the table, so a narrow terminal never cuts them.
    console.print(f"open it:  mlflow ui --backend-store-uri {result.tracking_uri}", highlight=False)
    if result.model_name:
        uri = f"models:/{result.model_name}@{result.alias}"
        console.print(f"load it:  mlflow.pyfunc.load_model({uri!r})", highlight=False)


@contextmanager
def _reported(r: Recipe) -> Iterator[None]:
    """Errors the user can act on (a full disk, an unreachable tracking server) as one line, exit 1."""
    from encore.errors import UserFacingError, disk_full_reported

    try:
        with disk_full_reported(r.out):
            yield
    except UserFacingError as e:
        err.print(f"[bold red]error:[/] {e}", highlight=False)
        raise typer.Exit(1) from None


def _stage(recipe: Path, set_: list[str] | None, stage: str) -> None:
    r = _load(recipe, set_)
    with _reported(r):
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
def prep_cmd(recipe: RecipeArg, set_: SetOpt = None) -> None:
    """Run the data_prep Spark job alone."""
    _stage(recipe, set_, "prep")


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
) -> None:
    """Run a training stage in this process, or the same command on several (encore.launch)."""
    import os

    from encore import launch
    from encore.train.resume import RESUME_ENV

    if resume is not None:  # read by tracking.training_run, here and in every launched process
        os.environ[RESUME_ENV] = "1" if resume else "0"
    if launcher is Launcher.none:
        _stage(recipe, set_, stage)
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


@train_app.command("sft")
def train_sft(
    recipe: RecipeArg,
    set_: SetOpt = None,
    resume: ResumeOpt = None,
    launcher: LauncherOpt = Launcher.none,
    accelerate_config: AccelerateConfigOpt = None,
    num_processes: ProcessesOpt = None,
) -> None:
    """Train the SFT adapter (needs the prep outputs)."""
    _train(recipe, set_, "sft", resume, launcher, accelerate_config, num_processes)


@train_app.command("dpo")
def train_dpo(
    recipe: RecipeArg,
    set_: SetOpt = None,
    resume: ResumeOpt = None,
    launcher: LauncherOpt = Launcher.none,
    accelerate_config: AccelerateConfigOpt = None,
    num_processes: ProcessesOpt = None,
) -> None:
    """Train the DPO adapter on top of the SFT adapter (loss variants: dpo.args.loss_type)."""
    _train(recipe, set_, "dpo", resume, launcher, accelerate_config, num_processes)


@train_app.command("kto")
def train_kto(
    recipe: RecipeArg,
    set_: SetOpt = None,
    resume: ResumeOpt = None,
    launcher: LauncherOpt = Launcher.none,
    accelerate_config: AccelerateConfigOpt = None,
    num_processes: ProcessesOpt = None,
) -> None:
    """Train the KTO adapter on the unpaired rows, on top of the SFT adapter."""
    _train(recipe, set_, "kto", resume, launcher, accelerate_config, num_processes)


@train_app.command("orpo")
def train_orpo(
    recipe: RecipeArg,
    set_: SetOpt = None,
    resume: ResumeOpt = None,
    launcher: LauncherOpt = Launcher.none,
    accelerate_config: AccelerateConfigOpt = None,
    num_processes: ProcessesOpt = None,
) -> None:
    """Train the ORPO adapter (reference-free; on the base when sft.enabled is false)."""
    _train(recipe, set_, "orpo", resume, launcher, accelerate_config, num_processes)


@train_app.command("simpo")
def train_simpo(
    recipe: RecipeArg,
    set_: SetOpt = None,
    resume: ResumeOpt = None,
    launcher: LauncherOpt = Launcher.none,
    accelerate_config: AccelerateConfigOpt = None,
    num_processes: ProcessesOpt = None,
) -> None:
    """Train the SimPO adapter (TRL's CPOTrainer with loss_type simpo; reference-free)."""
    _train(recipe, set_, "simpo", resume, launcher, accelerate_config, num_processes)


@train_app.command("reward")
def train_reward(
    recipe: RecipeArg,
    set_: SetOpt = None,
    resume: ResumeOpt = None,
    launcher: LauncherOpt = Launcher.none,
    accelerate_config: AccelerateConfigOpt = None,
    num_processes: ProcessesOpt = None,
) -> None:
    """Train the reward model (sequence-classification head + LoRA) on the preference pairs."""
    _train(recipe, set_, "reward", resume, launcher, accelerate_config, num_processes)


@train_app.command("grpo")
def train_grpo(
    recipe: RecipeArg,
    set_: SetOpt = None,
    resume: ResumeOpt = None,
    launcher: LauncherOpt = Launcher.none,
    accelerate_config: AccelerateConfigOpt = None,
    num_processes: ProcessesOpt = None,
) -> None:
    """Train the GRPO adapter against the reward model and the programmatic rewards (grpo.rewards)."""
    _train(recipe, set_, "grpo", resume, launcher, accelerate_config, num_processes)


@app.command("eval")
def eval_cmd(recipe: RecipeArg, set_: SetOpt = None) -> None:
    """Evaluate base / SFT / the preference policy on the held-out requests."""
    _stage(recipe, set_, "eval")


@app.command("register")
def register_cmd(recipe: RecipeArg, set_: SetOpt = None) -> None:
    """Register the trained policy as an MLflow pyfunc with the recipe's alias."""
    _stage(recipe, set_, "register")


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

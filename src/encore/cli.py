"""The `encore` command line: run a pipeline, one stage, validate a recipe, or simulate feedback logs."""

from __future__ import annotations

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
    """Prep → SFT → DPO → eval → register, one parent MLflow run with a child run per stage."""
    from encore import pipeline as pipeline_

    result = pipeline_.main(_load(recipe, set_))
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


def _stage(recipe: Path, set_: list[str] | None, stage: str) -> None:
    from encore import tracking
    from encore.stages import dpo, evaluate, prep, register, sft

    r = _load(recipe, set_)
    tracking.setup(r)
    {"prep": prep.main, "sft": sft.main, "dpo": dpo.main, "eval": evaluate.main, "register": register.main}[
        stage
    ](r)


@app.command("prep")
def prep_cmd(recipe: RecipeArg, set_: SetOpt = None) -> None:
    """Run the data_prep Spark job alone."""
    _stage(recipe, set_, "prep")


@train_app.command("sft")
def train_sft(recipe: RecipeArg, set_: SetOpt = None) -> None:
    """Train the SFT adapter (needs the prep outputs)."""
    _stage(recipe, set_, "sft")


@train_app.command("dpo")
def train_dpo(recipe: RecipeArg, set_: SetOpt = None) -> None:
    """Train the DPO adapter on top of the SFT adapter."""
    _stage(recipe, set_, "dpo")


@app.command("eval")
def eval_cmd(recipe: RecipeArg, set_: SetOpt = None) -> None:
    """Evaluate base / SFT / DPO on the held-out requests."""
    _stage(recipe, set_, "eval")


@app.command("register")
def register_cmd(recipe: RecipeArg, set_: SetOpt = None) -> None:
    """Register the trained policy as an MLflow pyfunc with the recipe's alias."""
    _stage(recipe, set_, "register")


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


if __name__ == "__main__":
    app()

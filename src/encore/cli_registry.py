"""The registry's commands: `encore promote`, `compare`, `generate` and `serve`, on a tracking URI.

`encore.cli` adds them to the `encore` app; the work is in `encore.registry` (and MLflow's serving).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table

if TYPE_CHECKING:
    from mlflow import MlflowClient

app = typer.Typer()
console = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)

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

    from encore.registry import promote as gate
    from encore.registry.promotion import PromotionError, promote_version

    try:
        floors = dict(gate.parse_floor(item) for item in floor or [])
    except ValueError as e:
        err.print(f"[bold red]error:[/] --floor {e}")
        raise typer.Exit(2) from None
    try:
        done = promote_version(
            _client(tracking_uri),
            name,
            from_=from_,
            to=to,
            metric=metric,
            margin=margin,
            tolerance=tolerance,
            min_z=min_z,
            floors=floors,
            eval_set=eval_set,
            max_requests=max_requests,
            say=lambda line: console.print(line, highlight=False),
        )
    except PromotionError as e:
        err.print(f"[bold red]error:[/] {e}", highlight=False)
        raise typer.Exit(2) from None
    console.print(done.table())
    if done.paired is not None:
        console.print(
            f"paired {done.primary}, candidate − champion on the same requests: {done.paired.describe()}"
        )
    if done.conflict is not None:
        err.print(f"[bold red]not promoted:[/] {done.conflict}; no alias was moved", highlight=False)
        raise typer.Exit(1)
    if report:
        report.parent.mkdir(parents=True, exist_ok=True)
        report.write_text(json.dumps(done.report(), indent=2, sort_keys=True))
    champion = f"v{done.champion}" if done.champion else "(none)"
    if not done.promoted:
        console.print(f"[bold red]not promoted:[/] @{to} stays on {champion}")
        for reason in done.decision.reasons:
            console.print(f"  - {reason}", highlight=False)
        raise typer.Exit(1)
    was = f" (was {champion}, now @previous-{to})" if done.champion else " (first champion)"
    console.print(f"[bold green]promoted:[/] {name}@{to} → v{done.candidate}{was}", highlight=False)


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

    from encore.registry import compare as compare_
    from encore.registry import compare_view

    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")  # one download per run: no bars
    client = _client(tracking_uri)
    views = [compare_.collect(client, ref, samples) for ref in refs]
    for table in compare_view.rich_tables(views):
        console.print(table)
    if html:
        html.parent.mkdir(parents=True, exist_ok=True)
        html.write_text(compare_view.html_page(views))
        console.print(f"html: {html}", highlight=False)

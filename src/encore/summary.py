"""What `encore pipeline` tells a reader: each stage's key figure, then the summary at the end.

The summary sets the eval metrics of base, SFT, the preference model and the model-free references
(retrieval order, the reranker, the oracle: whichever the eval stage's `metrics.json` holds) side by
side, shows the final model's answer to one held-out request, and says where to look next: the HTML
report, the MLflow UI, the registered model, and the commands that ask it for a playlist.
"""

from __future__ import annotations

import json
import shlex
import shutil
import sysconfig
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import mlflow
import pandas as pd
from mlflow.exceptions import MlflowException
from rich import box
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from encore.progress import Progress

# The rows of the side-by-side table: the format, grounding and fulfilment the promotion gate reads first.
TABLE_METRICS = (
    "format_valid", "grounded", "fulfillment", "sim_satisfaction", "copies_order", "preference_accuracy",
)  # fmt: skip
# The model-free references of evaluation/baselines.py, after the models, with what each one is.
REFERENCES = {
    "retrieval": "the candidates in retrieval order",
    "reranker": "a learning-to-rank model on the logged feedback",
    "oracle": "the candidates the hidden intent fits best",
}
ASK = "mellow folk for a rainy sunday"  # the request of the `encore generate` line
DEFAULT_STORE = "sqlite:///mlruns/mlflow.db"  # the CLI's default --tracking-uri


def stage_metrics(stage: str) -> dict[str, float]:
    """The metrics of ``stage``'s run that just ended: a child of the active pipeline run, or this process's last."""
    parent = mlflow.active_run()
    try:
        if parent is None:
            run = mlflow.last_active_run()
            return dict(run.data.metrics) if run is not None else {}
        runs = mlflow.search_runs(
            [parent.info.experiment_id],
            filter_string=f"tags.mlflow.parentRunId = '{parent.info.run_id}' and tags.`encore.stage` = '{stage}'",
            order_by=["attributes.start_time DESC"],
            max_results=1,
            output_format="list",
        )
    except MlflowException:  # a line without its figure, rather than a stage that failed for it
        return {}
    return dict(runs[0].data.metrics) if runs else {}


@contextmanager
def noted_stage(progress: Progress, stage: str) -> Iterator[None]:
    """``progress``'s line for the stage run in the block, with the key figure of the run it ended."""
    with progress.stage(stage) as line:
        yield
        line.note = stage_note(stage, stage_metrics(stage))


def stage_note(stage: str, metrics: Mapping[str, float]) -> str:
    """A finished stage's key figure from its run's metrics: row counts, the final loss, the final model's scores."""
    if stage == "prep":
        counts = (("pairs", "pairs"), ("sft", "SFT rows"), ("eval", "eval requests"))
        return " · ".join(
            f"{metrics[f'prep/{name}/rows']:.0f} {label}"
            for name, label in counts
            if f"prep/{name}/rows" in metrics
        )
    if stage == "eval":
        scores = [
            f"{k} {metrics[f'eval/final/{k}']:.3f}" for k in TABLE_METRICS[:3] if f"eval/final/{k}" in metrics
        ]
        n = metrics.get("eval/final/n_requests")
        return " · ".join(([f"{n:.0f} requests"] if n else []) + scores)
    if stage == "register":
        match = metrics.get("register/roundtrip_match")
        return "" if match is None else f"round trip in a fresh process: {match:.0%} the same"
    loss = metrics.get("train/final_loss")  # every training stage (encore.train.run)
    return "" if loss is None else f"loss {loss:.3f}"


def metric_columns(metrics_json: Path, models: Sequence[str]) -> dict[str, dict[str, float]]:
    """The eval stage's metrics by column: the models in ``models`` order, the references, then the rest."""
    if not metrics_json.exists():
        return {}
    found = json.loads(metrics_json.read_text())
    order = [n for n in [*models, *REFERENCES] if n in found]
    return {n: found[n] for n in [*order, *sorted(set(found) - set(order))]}


def metrics_table(columns: Mapping[str, Mapping[str, float]]) -> Table:
    """One row per metric of :data:`TABLE_METRICS`, one column per model or reference (– where it has none)."""
    n = {c["n_requests"] for c in columns.values() if "n_requests" in c}
    title = "eval" + (f" on {next(iter(n)):.0f} held-out requests" if len(n) == 1 else "")
    legend = [f"{name}: {what}" for name, what in REFERENCES.items() if name in columns]
    caption = "; ".join(legend) or None
    table = Table(
        box=box.SIMPLE_HEAD, title=title, title_justify="left", caption=caption, caption_justify="left"
    )
    table.add_column("metric")
    for name in columns:
        table.add_column(name, justify="right")
    for metric in TABLE_METRICS:
        if any(metric in c for c in columns.values()):
            table.add_row(metric, *(f"{c[metric]:.3f}" if metric in c else "–" for c in columns.values()))
    return table


def sample_answer(eval_dir: Path, prepared_eval: Path, model: str) -> dict[str, Any] | None:
    """``model``'s scored answer to the first held-out request that opens a conversation (else the first one)."""
    path = eval_dir / f"per_row_{model}.json"
    if not path.exists():
        return None
    rows = json.loads(path.read_text())
    if not rows:
        return None
    history = pd.read_parquet(prepared_eval, columns=["prompt_id", "history"])
    first_turns = set(history.loc[history["history"].map(len) == 0, "prompt_id"])
    return next((r for r in rows if r.get("prompt_id") in first_turns), rows[0])


def command(name: str) -> str:
    """How to run this environment's console script ``name`` from here: by name when PATH finds this one."""
    path = Path(sysconfig.get_path("scripts")) / name
    found = shutil.which(name)
    if found and Path(found).resolve() == path.resolve():
        return name
    return str(path.relative_to(Path.cwd())) if path.is_relative_to(Path.cwd()) else str(path)


def print_summary(
    console: Console,
    *,
    run_id: str,
    seconds: float,
    tracking_uri: str,
    out: Path,
    models: Sequence[str],
    final: str,
    registered: tuple[str, str, str] | None,
    log: Path | None,
) -> None:
    """The end of `encore pipeline`: metrics side by side, one sample playlist, and where to look next.

    Args:
        registered: (name, version, alias) of the registered model, None when the recipe registers none.
        log: the file with the libraries' output, None when it went to the terminal (``--verbose``).
    """
    console.print(
        f"\n[bold]encore pipeline[/] finished in {seconds:.0f} s · MLflow run {run_id}", highlight=False
    )
    columns = metric_columns(out / "eval" / "metrics.json", models)
    if columns:
        console.print(metrics_table(columns))
    sample = sample_answer(out / "eval", out / "prepared" / "eval", final)
    if sample is not None:
        console.print(f"a held-out request: [bold]{escape(str(sample['request']))}[/]", highlight=False)
        lines = list(zip(sample["lines"], sample["grounded_lines"], strict=True))
        if not lines:
            console.print(
                f"  {final} answered nothing that parses: {escape(repr(sample['completion'][:100]))}",
                highlight=False,
            )
        else:
            console.print(
                f"  {final} answered ({sum(ok for _, ok in lines)} of {len(lines)} in the catalog):"
            )
        for i, (line, ok) in enumerate(lines, 1):
            console.print(
                f"  {i:>3}. {escape(line)}" + ("" if ok else "  [red]✗ not in the catalog[/]"),
                highlight=False,
            )
    store = "" if tracking_uri == DEFAULT_STORE else f" --tracking-uri {tracking_uri}"
    # Label and command on one line each, outside any table, so that a narrow terminal never cuts them.
    steps = [("report", str(out / "eval" / "report.html"))]
    steps.append(("open it", f"{command('mlflow')} ui --backend-store-uri {tracking_uri}"))
    if registered is not None:
        name, version, alias = registered
        uri = f"models:/{name}@{alias}"
        steps += [
            ("registered", f"{name} version {version} @{alias}"),
            ("ask it", f"{command('encore')} generate {shlex.quote(ASK)} --model {uri}{store}"),
            ("serve it", f"{command('encore')} serve {uri}{store}"),
            ("load it", f"mlflow.pyfunc.load_model({uri!r})"),
        ]
    if log is not None:
        steps.append(("log", f"{log}  (warnings, Spark and training output; --verbose shows them here)"))
    for label, text in steps:
        console.print(f"{label + ':':<12}{text}", highlight=False)

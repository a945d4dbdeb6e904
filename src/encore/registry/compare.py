"""Side-by-side comparison of pipeline runs or registered models: differing params, metric deltas, samples.

Example::

    >>> views = [collect(client, "models:/playlist-generator@champion"), collect(client, "3f9c…")]
    >>> [(r.name, r.verdicts) for r in metric_rows(views)][:1]
    [('eval/final/fulfillment', ['', 'better'])]

A reference is a run id, ``runs:/<id>``, ``models:/<name>@<alias>`` or ``models:/<name>/<version>``. A
model version stands for the run that registered it; any run stands for its whole pipeline (the
top-level run and its stage runs), so the recipe params, every stage's metrics and the eval samples
are found whichever of them is named. The first reference is the baseline every delta is taken from.
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlflow import MlflowClient
from mlflow.entities import Run
from mlflow.exceptions import MlflowException

from encore.methods import PREFERENCE_STAGE
from evaluation.direction import direction
from evaluation.paired import PAIRED_METRICS, PairedDelta, keyed, paired_delta

FINAL = "eval/final/"
CATEGORY = "fulfillment/category/"


def verdict(metric: str, baseline: float | None, value: float | None, tolerance: float = 1e-9) -> str:
    """`better`, `worse` or `same` for `value` against `baseline`; `changed` for neutral metrics; `n/a` if one is missing."""
    if baseline is None or value is None:
        return "n/a"
    delta = value - baseline
    if abs(delta) <= tolerance:
        return "same"
    sign = direction(metric)
    if sign == 0:
        return "changed"
    return "better" if delta * sign > 0 else "worse"


@dataclass
class RunView:
    """One compared reference: its label, pipeline run, params, metrics and scored eval rows."""

    label: str
    run_id: str
    params: dict[str, str] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    rows: list[dict[str, Any]] = field(default_factory=list)  # every scored eval row of the final model
    n_samples: int = 5

    @property
    def samples(self) -> list[dict[str, Any]]:
        """The rows shown side by side: the first `n_samples`."""
        return self.rows[: self.n_samples]


@dataclass
class MetricRow:
    name: str
    values: list[float | None]
    deltas: list[float | None]  # against the first view; None for the first and where a value is missing
    verdicts: list[str]  # "" for the first view


def resolve(client: MlflowClient, ref: str) -> tuple[str, str, dict[str, str]]:
    """(label, run id, model version tags) for a reference; the tags are empty for a run."""
    if ref.startswith("models:/"):
        name, _, rest = ref.removeprefix("models:/").partition("/")
        if "@" in name:
            name, alias = name.split("@", 1)
            version = client.get_model_version_by_alias(name, alias)
            label = f"{name}@{alias} (v{version.version})"
        else:
            version = client.get_model_version(name, rest)
            label = f"{name} v{version.version}"
        if not version.run_id:
            raise ValueError(f"{ref} was not registered from a run: nothing to compare")
        return label, version.run_id, dict(version.tags)
    run_id = ref.removeprefix("runs:/").split("/")[0]
    return run_id[:8], run_id, {}


def pipeline_runs(client: MlflowClient, run_id: str) -> tuple[Run, list[Run]]:
    """The top-level run above `run_id` and its child runs."""
    run = client.get_run(run_id)
    while parent := run.data.tags.get("mlflow.parentRunId"):
        run = client.get_run(parent)
    children = client.search_runs(
        [run.info.experiment_id], filter_string=f"tags.mlflow.parentRunId = '{run.info.run_id}'"
    )
    return run, children


def final_model(params: dict[str, str]) -> str:
    """The model whose eval rows stand for the run: the preference stage, else SFT, else base."""
    stage = PREFERENCE_STAGE.get(params.get("preference", "dpo"), "dpo")
    for name in (stage, "sft"):
        if params.get(f"{name}.enabled") == "True":
            return name
    return "base"


def load_rows(client: MlflowClient, runs: list[Run], model: str) -> list[dict[str, Any]]:
    """The scored rows of `model` from the eval run's report (`report/per_row_<model>.json`)."""
    for run in runs:
        if run.data.tags.get("encore.stage") != "eval":
            continue
        with tempfile.TemporaryDirectory() as tmp:
            try:
                path = client.download_artifacts(run.info.run_id, f"report/per_row_{model}.json", tmp)
            except (MlflowException, OSError):  # an eval run without that report: no samples
                continue
            return list(json.loads(Path(path).read_text()))
    return []


def collect(client: MlflowClient, ref: str, n_samples: int = 5) -> RunView:
    """Everything compared about one reference (see the module docstring for what a reference stands for)."""
    label, run_id, tags = resolve(client, ref)
    root, children = pipeline_runs(client, run_id)
    metrics: dict[str, float] = {}
    for run in [*children, root]:  # the pipeline's own summary wins over a stage's copy
        metrics.update(run.data.metrics)
    for key, value in tags.items():  # a version registered alone still carries its eval metrics
        if key.startswith("metric."):
            metrics.setdefault(FINAL + key.removeprefix("metric."), float(value))
    params = dict(root.data.params)
    rows = load_rows(client, children or [root], final_model(params))
    if not tags:  # a run: named by its pipeline run
        label = f"{root.info.run_name or 'run'} ({root.info.run_id[:8]})"
    return RunView(label, root.info.run_id, params, metrics, rows, n_samples)


def param_diff(views: list[RunView]) -> list[tuple[str, list[str | None]]]:
    """The params whose values are not the same in every view (a missing param counts as a value)."""
    keys = sorted({k for v in views for k in v.params})
    rows = [(k, [v.params.get(k) for v in views]) for k in keys]
    return [(k, values) for k, values in rows if len(set(values)) > 1]


def metric_rows(views: list[RunView], names: list[str] | None = None) -> list[MetricRow]:
    """Values, deltas against the first view and verdicts for `names` (default: the final eval metrics
    outside the per-category ones, in alphabetical order)."""
    if names is None:
        found = {k for v in views for k in v.metrics if k.startswith(FINAL) and CATEGORY not in k}
        names = sorted(found)
    rows = []
    for name in names:
        values = [v.metrics.get(name) for v in views]
        base = values[0]
        deltas = [None] + [None if base is None or x is None else x - base for x in values[1:]]
        verdicts = [""] + [verdict(name, base, x) for x in values[1:]]
        rows.append(MetricRow(name, values, deltas, verdicts))
    return rows


def category_rows(views: list[RunView]) -> list[MetricRow]:
    """Final fulfilment per request category, compared like :func:`metric_rows`."""
    names = sorted({k for v in views for k in v.metrics if k.startswith(FINAL + CATEGORY)})
    return metric_rows(views, names)


def paired_rows(views: list[RunView]) -> list[tuple[str, list[PairedDelta | None]]]:
    """Per-request differences against the first view (:mod:`evaluation.paired`), one row per metric;
    None for the baseline itself. Requests are matched by prompt id, so only runs evaluated on the same
    eval set pair up (otherwise n is 0 and the cell reads –)."""
    if not views or not views[0].rows or not keyed(v.rows for v in views):
        return []
    base = views[0].rows
    return [
        (metric, [None] + [paired_delta(base, v.rows, metric, higher) for v in views[1:]])
        for metric, higher in PAIRED_METRICS.items()
    ]


def sample_rows(views: list[RunView]) -> list[tuple[str, list[dict[str, Any] | None]]]:
    """(request, each view's scored row or None) for the sample requests of the first view, each looked up
    among all the scored rows of every view (matched by prompt id), not only among its own samples."""
    by_id = [{s.get("prompt_id") or s.get("request"): s for s in v.rows} for v in views]
    rows = []
    for sample in views[0].samples if views else []:
        key = sample.get("prompt_id") or sample.get("request")
        rows.append((str(sample.get("request")), [index.get(key) for index in by_id]))
    return rows


def playlist_lines(row: dict[str, Any] | None) -> list[str]:
    """A scored row's playlist lines, each ungrounded line ending with ✗; the raw answer when nothing parsed."""
    if row is None:
        return ["(not in this run's eval rows)"]
    lines, flags = list(row.get("lines", [])), list(row.get("grounded_lines", []))
    if not lines:
        return ["(no playlist) " + str(row.get("completion", ""))[:80]]
    return [line if ok else f"{line} ✗" for line, ok in zip(lines, flags, strict=False)]


def metric_curves(client: MlflowClient, runs: list[Run], metric: str) -> dict[str, list[tuple[int, float]]]:
    """`metric`'s (step, value) history in each run that logged it, keyed by the run's stage (or name)."""
    curves = {}
    for run in runs:
        if metric in run.data.metrics:
            history = client.get_metric_history(run.info.run_id, metric)
            label = run.data.tags.get("encore.stage") or run.info.run_name or run.info.run_id[:8]
            curves[label] = [(m.step, m.value) for m in history]
    return curves

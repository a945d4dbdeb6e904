"""The promotion gate's parts: the rule, evaluating a registered version, moving aliases (`registry.promotion` runs them).

The rule (:func:`decide`), with the defaults::

    1. floors      the candidate meets every floor: format_valid ≥ 0.8, grounded ≥ 0.95,
                   distinct_artist_ratio ≥ 0.5 (a metric the eval set does not yield fails its floor);
                   the candidate version's `floor.<metric>` tags (its recipe's `register.floors`)
                   override these, and `encore promote --floor` overrides both;
    2. primary     the candidate has the primary metric (fulfillment), and, when there is a champion,
                   beats it by at least the margin (0.01): candidate − champion ≥ margin and > 0;
                   with `min_z` > 0 (default 0), its paired gain over the same requests is also at
                   least that many standard errors (`evaluation.paired`; 2 keeps noise out);
    3. guardrails  when there is a champion, no guardrail (format_valid, grounded, distinct_artist_ratio)
                   is worse than the champion's by more than the tolerance (0).

With no champion yet, 1 and "has the primary metric" decide. Both models are evaluated as registered
(their own retrieval and generation settings) on the same eval rows, scored against one catalog by
`evaluation.score.score_playlists`: the numbers are computed here, never read from tags.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import mlflow
import pandas as pd
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from evaluation.direction import direction
from evaluation.paired import PairedDelta
from evaluation.score import EvalResult, score_playlists

GUARDRAILS = ("format_valid", "grounded", "distinct_artist_ratio")
FLOORS = {"format_valid": 0.8, "grounded": 0.95, "distinct_artist_ratio": 0.5}


def floor_tags(floors: Mapping[str, float]) -> dict[str, str]:
    """Floors as model-version tags (`floor.<metric>`), the form :func:`version_floors` reads back."""
    return {f"floor.{metric}": repr(float(value)) for metric, value in floors.items()}


def version_floors(tags: Mapping[str, str]) -> dict[str, float]:
    """The floors a version was registered with (its recipe's `register.floors`, tags `floor.<metric>`)."""
    return {k.removeprefix("floor."): float(v) for k, v in tags.items() if k.startswith("floor.")}


def parse_floor(item: str) -> tuple[str, float]:
    """`metric=value` (the CLI's `--floor`) as a pair; ValueError naming the item when it is not one."""
    metric, _, value = item.partition("=")
    try:
        floor = float(value)
    except ValueError:
        raise ValueError(f"{item}: want METRIC=NUMBER") from None
    if not direction(metric):
        raise ValueError(f"{item}: {metric} is neither higher- nor lower-is-better")
    return metric, floor


@dataclass(frozen=True)
class Check:
    """One line of the decision: which rule, on which metric, the two numbers, and whether it passed."""

    rule: str  # "floor", "primary" or "guardrail"
    metric: str
    candidate: float | None
    reference: float | None  # the champion's value, or the floor
    passed: bool
    why: str


@dataclass
class Decision:
    promote: bool
    checks: list[Check] = field(default_factory=list)

    @property
    def reasons(self) -> list[str]:
        """Why not, one line per failed check (empty when promoted)."""
        return [c.why for c in self.checks if not c.passed]


def _fmt(value: float | None) -> str:
    return "missing" if value is None else f"{value:.3f}"


def floor_check(metric: str, value: float | None, floor: float) -> Check:
    """`value` meets `floor` (at least it, or at most it for a lower-is-better metric)."""
    sign = direction(metric) or 1
    ok = value is not None and (value - floor) * sign >= 0
    side = "above" if sign > 0 else "below"
    why = f"{metric} {_fmt(value)} {'meets' if ok else 'misses'} the floor {floor:g} (at or {side} it)"
    return Check("floor", metric, value, floor, ok, why)


def significant(paired: PairedDelta | None, sign: int, min_z: float) -> bool:
    """The paired gain (in the metric's direction `sign`) is at least `min_z` standard errors.

    A gain with no spread at all (every request moved the same way by the same amount) counts.
    """
    if paired is None or paired.mean is None or paired.stderr is None:
        return False
    gain = paired.mean * sign
    return gain > 0 and (paired.stderr == 0 or gain / paired.stderr >= min_z)


def decide(
    candidate: Mapping[str, float],
    champion: Mapping[str, float] | None,
    *,
    primary: str = "fulfillment",
    margin: float = 0.01,
    guardrails: Sequence[str] = GUARDRAILS,
    floors: Mapping[str, float] = FLOORS,
    tolerance: float = 0.0,
    paired: PairedDelta | None = None,
    min_z: float = 0.0,
) -> Decision:
    """Whether `candidate` may become champion (the rule is in the module docstring).

    Args:
        candidate: the candidate's metrics on the eval set.
        champion: the champion's metrics on the same eval set, or None when there is no champion.
        primary: the metric the candidate must win on (its direction from :func:`evaluation.direction.direction`).
        margin: how much better the candidate must be on `primary`.
        guardrails: metrics on which the candidate may not be worse than the champion.
        floors: the least (or, for lower-is-better metrics, the most) each metric may be.
        tolerance: how much worse a guardrail may be before it counts as worse.
        paired: the per-request difference candidate − champion on `primary` (shown in the reason).
        min_z: when > 0, the paired gain must also be at least this many standard errors.

    Returns:
        The decision with every check, passed or not, in the order floors, primary, guardrails.
    """
    checks = [floor_check(m, candidate.get(m), f) for m, f in floors.items()]
    sign = direction(primary) or 1
    cand = candidate.get(primary)
    if champion is None:
        checks.append(
            Check(
                "primary", primary, cand, None, cand is not None, f"{primary} {_fmt(cand)}, no champion yet"
            )
        )
    else:
        champ = champion.get(primary)
        delta = None if cand is None or champ is None else (cand - champ) * sign
        ok = delta is not None and delta > 0 and delta >= margin
        why = f"{primary} {_fmt(cand)} vs champion {_fmt(champ)}: " + (
            "not computed" if delta is None else f"{'wins' if ok else 'does not win'} by ≥ {margin:g}"
        )
        if paired is not None:
            why += f"; paired {paired.describe()}"
        if min_z > 0:
            sure = significant(paired, sign, min_z)
            ok = ok and sure
            why += f", {'' if sure else 'not '}{min_z:g} standard errors"
        checks.append(Check("primary", primary, cand, champ, ok, why))
        for metric in guardrails:
            c, ch = candidate.get(metric), champion.get(metric)
            g_sign = direction(metric) or 1
            if ch is None:  # the champion has no value: nothing to be worse than
                ok, why = True, f"{metric}: champion has no value"
            else:
                ok = c is not None and (c - ch) * g_sign >= -tolerance
                # The gap itself when worse: three decimals can show two different values alike.
                gap = "" if ok or c is None else f" by {abs(c - ch):.2g}"
                why = f"{metric} {_fmt(c)} vs champion {_fmt(ch)}: {'not worse' if ok else 'worse'}{gap}"
            checks.append(Check("guardrail", metric, c, ch, ok, why))
    return Decision(all(c.passed for c in checks), checks)


def eval_rows(path: str | Path, max_requests: int | None = None) -> list[dict[str, Any]]:
    """Eval rows (a prepared `eval` Parquet directory or file) in prompt-id order, at most `max_requests`."""
    frame = pd.read_parquet(path).sort_values("prompt_id", kind="stable")
    return (frame if max_requests is None else frame.head(max_requests)).to_dict("records")


def requests_frame(rows: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
    """The pyfunc's input for eval rows: request, history and candidates (None lets the model retrieve)."""

    def strings(value: Any) -> list[str] | None:
        return None if value is None else [str(v) for v in value]

    return pd.DataFrame(
        {
            "request": [str(r["request"]) for r in rows],
            "history": [strings(r.get("history")) or [] for r in rows],
            "candidates": [strings(r.get("candidates")) for r in rows],
        }
    )


def evaluate_version(
    model_uri: str, rows: Sequence[Mapping[str, Any]], catalog: pd.DataFrame | None = None, seed: int = 0
) -> tuple[EvalResult, pd.DataFrame]:
    """Load a registered pyfunc, answer the eval rows with it and score the answers on every eval task.

    Args:
        model_uri: e.g. ``models:/playlist-generator/3``.
        rows: eval rows (``prompt_id, request, history, candidates, intent``).
        catalog: the catalog to score against; None uses the one bundled with the model.
        seed: seeds the simulated-user panel (the same seed for every model compared).

    Returns:
        The scores and the catalog they were scored against.
    """
    model = mlflow.pyfunc.load_model(model_uri)
    if catalog is None:
        catalog = model.unwrap_python_model().generator.catalog
    answers = model.predict(requests_frame(rows))
    return score_playlists(list(answers["completion"]), rows, catalog, seed=seed), catalog


class AliasConflict(RuntimeError):
    """The target alias moved while the gate was evaluating: nothing was changed."""


def alias_version(client: MlflowClient, name: str, alias: str) -> str | None:
    """The version `alias` points at, or None."""
    try:
        return str(client.get_model_version_by_alias(name, alias).version)
    except MlflowException:
        return None


def move_alias(client: MlflowClient, name: str, alias: str, version: str, expected: str | None) -> None:
    """Point `alias` at `version` and `previous-<alias>` at the version it left, all or nothing.

    Raises:
        AliasConflict: `alias` no longer points at `expected` (another promotion got there first).
        MlflowException: a move failed; every alias touched is back where it was.
    """
    current = alias_version(client, name, alias)
    if current != expected:
        raise AliasConflict(f"{name}@{alias} is version {current}, not {expected}, since evaluation began")
    previous = f"previous-{alias}"
    before = {previous: alias_version(client, name, previous), alias: current}
    plan = ([(previous, current)] if current is not None else []) + [(alias, version)]
    try:
        for key, target in plan:
            client.set_registered_model_alias(name, key, target)
    except MlflowException:
        for key, was in before.items():  # put every alias back, touched or not: the state is known
            if was is None:
                with contextlib.suppress(MlflowException):  # it may never have been set
                    client.delete_registered_model_alias(name, key)
            else:
                client.set_registered_model_alias(name, key, was)
        raise

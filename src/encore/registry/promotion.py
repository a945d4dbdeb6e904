"""The promotion flow behind `encore promote`: evaluate candidate and champion on one eval set, decide, record, move.

1. find the candidate version (``NAME@FROM``) and the champion's (``NAME@TO``, maybe none);
2. answer the same eval rows with both pyfuncs and score them (`promote.evaluate_version`);
3. decide with `promote.decide`: the primary metric's margin and paired z, the floors (defaults, then the
   version's own `floor.<metric>` tags, then the caller's), the guardrails;
4. tag the candidate version with the verdict (`promotion.<TO>`), then, if it won, move the aliases
   (`promote.move_alias`: ``TO`` → the candidate, ``previous-TO`` → the old champion, all or nothing).

The record goes on the version before any alias moves: an alias never points at an unrecorded decision.
The CLI only parses options and prints; everything here is unit-tested on a real MLflow store.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlflow import MlflowClient
from mlflow.exceptions import MlflowException
from rich.table import Table

from encore.registry import promote as gate
from evaluation.direction import direction
from evaluation.paired import PairedDelta, paired_delta


class PromotionError(ValueError):
    """The promotion cannot be evaluated as asked (no such alias, no eval set); nothing was changed."""


@dataclass
class Promotion:
    """What one promotion evaluated and decided.

    Attributes:
        conflict: why the aliases were not moved although the candidate won (another promotion moved
            ``to`` first, or a move failed and was rolled back); None otherwise.
    """

    name: str
    from_: str
    to: str
    candidate: str
    champion: str | None
    eval_set: str
    n_requests: int
    primary: str
    margin: float
    min_z: float
    floors: dict[str, float]
    decision: gate.Decision
    candidate_metrics: dict[str, float]
    champion_metrics: dict[str, float] | None
    paired: PairedDelta | None
    conflict: str | None = None

    @property
    def promoted(self) -> bool:
        """The candidate won and `to` now points at it."""
        return self.decision.promote and self.conflict is None

    def report(self) -> dict[str, Any]:
        """The JSON report (`encore promote --report`)."""
        paired = self.paired
        return {
            "name": self.name, "candidate": self.candidate, "champion": self.champion,
            "eval_set": self.eval_set, "n_requests": self.n_requests, "primary": self.primary,
            "margin": self.margin, "min_z": self.min_z, "floors": self.floors,
            "paired": None if paired is None else {"mean": paired.mean, "stderr": paired.stderr, "n": paired.n},
            "promoted": self.decision.promote, "reasons": self.decision.reasons,
            "candidate_metrics": self.candidate_metrics, "champion_metrics": self.champion_metrics,
        }  # fmt: skip

    def table(self) -> Table:
        """Every check of the decision: rule, metric, candidate, champion or floor, pass."""
        table = Table(title=f"promote {self.name} v{self.candidate} → @{self.to}")
        reference = f"v{self.champion} (@{self.to}) or floor" if self.champion else "floor"
        for column in ("rule", "metric", f"v{self.candidate} (@{self.from_})", reference, "pass"):
            table.add_column(column)
        for c in self.decision.checks:
            ref = "–" if c.reference is None else f"{c.reference:.3f}"
            cand = "missing" if c.candidate is None else f"{c.candidate:.3f}"
            table.add_row(c.rule, c.metric, cand, ref, "[green]yes[/]" if c.passed else "[red]no[/]")
        return table


def promote_version(
    client: MlflowClient,
    name: str,
    *,
    from_: str = "candidate",
    to: str = "champion",
    metric: str | None = None,
    margin: float = 0.01,
    tolerance: float = 0.0,
    min_z: float = 0.0,
    floors: Mapping[str, float] | None = None,
    eval_set: Path | None = None,
    max_requests: int | None = None,
    say: Callable[[str], None] = lambda line: None,
) -> Promotion:
    """Evaluate ``name@from_`` against ``name@to`` on the same requests and move ``to`` only when it wins.

    Args:
        client: the registry's client.
        name: the registered model.
        from_: the candidate's alias.
        to: the alias the candidate takes when it wins (its old version becomes ``previous-<to>``).
        metric: the primary metric (default: the version's ``primary_metric`` tag, else fulfillment).
        margin: how much better the candidate must be on the primary metric.
        tolerance: how much worse a guardrail may be before it counts.
        min_z: the paired gain on the primary metric must also be this many standard errors.
        floors: floors over the defaults and the version's own (`promote.parse_floor` parses them).
        eval_set: eval rows (Parquet); default: the candidate version's ``eval_set`` tag.
        max_requests: evaluate on the first N requests only.
        say: receives a line of progress before each model is evaluated.

    Raises:
        PromotionError: ``name@from_`` does not exist or there is no eval set.
    """
    try:
        candidate = client.get_model_version_by_alias(name, from_)
    except MlflowException:
        raise PromotionError(f"{name}@{from_} does not exist in {client.tracking_uri}") from None
    version = str(candidate.version)
    champion = gate.alias_version(client, name, to)
    path = eval_set or candidate.tags.get("eval_set")
    if not path or not Path(path).exists():
        raise PromotionError(f"no eval set: {path or 'the version has no eval_set tag'}; pass --eval-set")
    # The defaults, then the version's own (its recipe's `register.floors`), then the caller's.
    in_force = {**gate.FLOORS, **gate.version_floors(candidate.tags), **(floors or {})}
    primary = metric or candidate.tags.get("primary_metric") or "fulfillment"
    rows = gate.eval_rows(path, max_requests)
    say(f"evaluating {name} v{version} (@{from_}) on {len(rows)} requests from {path}")
    cand_result, catalog = gate.evaluate_version(f"models:/{name}/{version}", rows)
    champ_metrics = paired = None
    if champion is not None:
        say(f"evaluating {name} v{champion} (@{to}) on the same requests")
        champ_result, _ = gate.evaluate_version(f"models:/{name}/{champion}", rows, catalog)
        champ_metrics = champ_result.metrics
        paired = paired_delta(
            champ_result.per_row, cand_result.per_row, primary, higher=direction(primary) or 1
        )
    decision = gate.decide(
        cand_result.metrics,
        champ_metrics,
        primary=primary,
        margin=margin,
        floors=in_force,
        tolerance=tolerance,
        paired=paired,
        min_z=min_z,
    )
    out = Promotion(
        name, from_, to, version, champion, str(path), len(rows), primary, margin, min_z, in_force,
        decision, cand_result.metrics, champ_metrics, paired,
    )  # fmt: skip
    verdict = "promoted" if decision.promote else "refused: " + "; ".join(decision.reasons)
    against = f" against v{champion}" if champion else " (no champion)"
    client.set_model_version_tag(name, version, f"promotion.{to}", (verdict + against)[:4000])
    if decision.promote:
        try:
            gate.move_alias(client, name, to, version, champion)
        except (gate.AliasConflict, MlflowException) as e:
            out.conflict = str(e)
    return out

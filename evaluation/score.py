"""Score generated playlists on every eval task and aggregate the results into flat metrics.

Metric names (macro averages over requests, each in [0, 1] unless a count)::

    n_requests, mean_length                          counts
    format_valid, format_parses, format_duplicates   tasks/format_validity.py
    grounded, fully_grounded, in_candidates          tasks/grounding.py (in_candidates over rows with candidates)
    fulfillment, fulfillment/<constraint>,           tasks/fulfillment.py, over rows with an intent; a
    fulfillment/category/<category>                  constraint or category over the rows it applies to
    n_fulfillment, n_no_intent                       rows scored for fulfilment, rows without an intent
    grounded_exact, grounded_normalised,             tasks/open_grounding.py: claimed artist–title matched
    grounded_fuzzy, hallucination_rate               against the whole catalog, over rows with parsed lines
    distinct_artists, repeated_artists,              tasks/diversity.py, over rows with parsed lines
    distinct_artist_ratio, max_artist_share
    mean_popularity, catalog_coverage                tasks/popularity.py (coverage: over all rows at once)
    copies_order, mean_candidate_rank                tasks/position_bias.py, over rows with candidates
    sim_saves, sim_save_rate, sim_skip_rate,         tasks/simulated_users.py, over rows with an intent when
    sim_thumbs_up, sim_thumbs_down,                  the catalog carries the listener's attributes
    sim_satisfaction, n_sim

A metric that applies to no row (``in_candidates`` in open generation, fulfilment without intents) is left out.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from evaluation.tasks.diversity import diversity_scores
from evaluation.tasks.format_validity import format_scores
from evaluation.tasks.fulfillment import constraint_scores, fulfillment, parse_intent
from evaluation.tasks.grounding import grounding_scores
from evaluation.tasks.open_grounding import OpenMatcher, open_grounding_scores
from evaluation.tasks.popularity import catalog_coverage, mean_popularity
from evaluation.tasks.position_bias import position_scores
from evaluation.tasks.simulated_users import User, replay_playlist, replayable, user_for, user_panel
from playlist.grounding import catalog_records, catalog_tracks, ground_completion
from playlist.prompts import ParsedPlaylist, Track, catalog_key_index

# Per-row scores that may be None (not applicable); each is macro-averaged over the rows that have it.
OPTIONAL_METRICS = (
    "grounded_exact", "grounded_normalised", "grounded_fuzzy", "hallucination_rate",
    "distinct_artists", "repeated_artists", "distinct_artist_ratio", "max_artist_share", "mean_popularity",
    "sim_saves", "sim_save_rate", "sim_skip_rate", "sim_thumbs_up", "sim_thumbs_down",
    "sim_satisfaction", "copies_order", "mean_candidate_rank",
)  # fmt: skip


@dataclass
class EvalResult:
    """Aggregate metrics (flat, stable names) and the scored rows, one dict per request."""

    metrics: dict[str, float] = field(default_factory=dict)
    per_row: list[dict[str, Any]] = field(default_factory=list)


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values)


def _is_missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and value != value)


def score_row(
    completion: str,
    row: Mapping[str, Any],
    tracks: dict[str, Track],
    records: Mapping[str, Mapping[str, Any]],
    catalog_index: dict[tuple[str, str], str],
    matcher: OpenMatcher | None = None,
    panel: Sequence[User] | None = None,
    n_replays: int = 8,
) -> dict[str, Any]:
    """Score one completion against its eval row on every task.

    Args:
        completion: the generated answer.
        row: the eval row (``prompt_id, user_key, request, candidates, intent`` are read).
        tracks: the catalog from ``catalog_tracks``.
        records: the catalog rows from ``catalog_records``.
        catalog_index: from ``catalog_key_index``.
        matcher: open-generation matcher over the catalog; None leaves those scores out.
        panel: simulated listeners (:func:`user_panel`); None leaves the simulated-user scores out.
        n_replays: replays per playlist for the simulated users.

    Returns:
        A flat dict: the request, the completion, the resolved ``track_ids`` and ``grounded_lines`` flags
        per parsed line, the format and grounding scores, the ``category`` and the fulfilment scores
        (``fulfillment`` and ``fulfillment/<constraint>``; None without an intent).
    """
    candidates = row.get("candidates")
    candidate_ids = [] if candidates is None else [str(c) for c in candidates]
    playlist = ground_completion(completion, candidate_ids, tracks, catalog_index)
    intent = None if _is_missing(row.get("intent")) else parse_intent(row["intent"])
    scored: dict[str, Any] = {
        "prompt_id": row.get("prompt_id"),
        "request": row.get("request"),
        "completion": completion,
        "lines": [f"{line.artist} - {line.title}" for line in playlist.lines],
        "track_ids": playlist.track_ids,
        "grounded_lines": playlist.grounded,
        "n_lines": len(playlist.lines),
        **format_scores(ParsedPlaylist(playlist.lines, playlist.bad_lines)),
        **grounding_scores(playlist.track_ids, len(playlist.bad_lines), candidate_ids),
        **position_scores(playlist.track_ids, candidate_ids),
        "has_intent": intent is not None,
        "category": intent.get("category") if intent else None,
        "fulfillment": None,
    }
    if intent is not None:
        constraints = constraint_scores(
            [records.get(tid) if tid else None for tid in playlist.track_ids], intent
        )
        scored["fulfillment"] = fulfillment(constraints)
        scored.update({f"fulfillment/{name}": value for name, value in constraints.items()})
    if matcher is not None:
        levels = [matcher.match(line.artist, line.title).level for line in playlist.lines]
        scored["match_levels"] = levels
        scored.update(open_grounding_scores(levels))
    scored.update(diversity_scores([line.artist for line in playlist.lines]))
    popularity = {tid: records[tid].get("popularity") for tid in playlist.track_ids if tid and tid in records}
    scored["mean_popularity"] = mean_popularity(playlist.track_ids, popularity)
    if panel and intent is not None:
        key = str(row.get("prompt_id") or row.get("request"))
        user = user_for(str(row.get("user_key") or key), panel)
        # A track the playlist repeats is played once: no listener saves the same song twice.
        played = dict.fromkeys(tid for tid in playlist.track_ids if tid is not None and tid in records)
        grounded = [dict(records[tid]) for tid in played]
        scored.update(replay_playlist(user, intent, grounded, key=key, n_replays=n_replays))
    return scored


def aggregate(per_row: Sequence[Mapping[str, Any]]) -> dict[str, float]:
    """Macro averages over scored rows (see the module docstring for the names)."""
    metrics: dict[str, float] = {"n_requests": float(len(per_row))}
    if not per_row:
        return metrics
    metrics["mean_length"] = _mean([r["n_lines"] for r in per_row])
    for name in ("format_valid", "format_parses", "format_duplicates", "grounded", "fully_grounded"):
        metrics[name] = _mean([r[name] for r in per_row])
    in_candidates = [r["in_candidates"] for r in per_row if r["in_candidates"] is not None]
    if in_candidates:
        metrics["in_candidates"] = _mean(in_candidates)

    scored = [r for r in per_row if r["fulfillment"] is not None]
    metrics["n_fulfillment"] = float(len(scored))
    metrics["n_no_intent"] = float(sum(not r["has_intent"] for r in per_row))
    if scored:
        metrics["fulfillment"] = _mean([r["fulfillment"] for r in scored])
    by_key: dict[str, list[float]] = defaultdict(list)
    for r in scored:
        for key, value in r.items():
            if key.startswith("fulfillment/"):
                by_key[key].append(value)
        if r["category"] is not None:
            by_key[f"fulfillment/category/{r['category']}"].append(r["fulfillment"])
    metrics.update({key: _mean(values) for key, values in sorted(by_key.items())})
    for name in OPTIONAL_METRICS:
        values = [r[name] for r in per_row if r.get(name) is not None]
        if values:
            metrics[name] = _mean(values)
    if any("sim_satisfaction" in r for r in per_row):
        metrics["n_sim"] = float(sum("sim_satisfaction" in r for r in per_row))
    return metrics


def score_playlists(
    completions: Sequence[str],
    rows: Sequence[Mapping[str, Any]],
    catalog_df: pd.DataFrame,
    *,
    n_replays: int = 8,
    panel_size: int = 64,
    seed: int = 0,
) -> EvalResult:
    """Score completions against their eval rows and aggregate the metrics.

    Args:
        completions: one generated answer per row, in the same order.
        rows: eval rows (``prompt_id, request, candidates, intent``; see docs/architecture.md).
        catalog_df: the catalog (``track_id, artist, title, genre, subgenre, year, energy, valence, ...``).
        n_replays: simulated-user replays per playlist.
        panel_size: simulated listeners in the panel.
        seed: seeds the listener panel.

    Returns:
        The aggregate metrics and the per-request scores.

    Raises:
        ValueError: the numbers of completions and rows differ.
    """
    if len(completions) != len(rows):
        raise ValueError(f"{len(completions)} completions for {len(rows)} rows")
    tracks = catalog_tracks(catalog_df)
    records = catalog_records(catalog_df)
    index = catalog_key_index(list(tracks.values()))
    matcher = OpenMatcher(tracks.values())
    panel = user_panel(catalog_df, panel_size, seed) if len(catalog_df) and replayable(catalog_df) else None
    per_row = [
        score_row(c, r, tracks, records, index, matcher, panel, n_replays)
        for c, r in zip(completions, rows, strict=True)
    ]
    metrics = aggregate(per_row)
    if per_row and tracks:
        metrics["catalog_coverage"] = catalog_coverage([r["track_ids"] for r in per_row], len(tracks))
    return EvalResult(metrics=metrics, per_row=per_row)

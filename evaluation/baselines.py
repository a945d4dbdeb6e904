"""Reference playlists that need no model: where a trained policy stands between doing nothing and the best.

- ``retrieval``: the first ``n`` candidates in the order retrieval shows them, ``n`` the length the
  request asks for (the simulator's requests state it: "…, 12 songs"), else :data:`DEFAULT_LENGTH`.
  A model that scores like this has learnt to copy the candidate list, not to choose from it.
- ``oracle``: the ``n`` candidates the simulator's hidden intent fits best (``intent_fit``), best
  first: about the best that choosing among these candidates can do, only where the row carries an
  intent. Not a strict bound on every metric: the fit is the listener's soft score (a product over
  constraints), fulfilment a hard in-range fraction per constraint, so a constraint can score lower
  (on the smoke data its era 0.700 against retrieval order's 0.712).
- ``reranker``: the ``n`` candidates a learning-to-rank model trained on the training users' logged
  feedback scores best (evaluation/reranker.py): what a team would ship instead of an LLM. It is
  trained first and passed in (``score_baselines(..., reranker=...)``); without one it is left out.

Each answer is written the way a model answers (``c3 | artist - title``), so it is scored by the same
path as generated playlists (``evaluation.score.score_playlists``).

Example (a request for 2 songs, candidates c1 rock 2010, c2 folk 1972, c3 folk 1975, intent folk)::

    retrieval: "c1 | … \\nc2 | …"      oracle: "c2 | … \\nc3 | …"
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import pandas as pd

from evaluation.score import EvalResult, score_playlists
from evaluation.tasks.fulfillment import parse_intent
from evaluation.tasks.simulated_users import replayable
from playlist.grounding import catalog_records, catalog_tracks
from playlist.prompts import Track, render_playlist
from playlist.simulator.intents import intent_fit
from playlist.simulator.policy import DEFAULT_LENGTH

Baseline = Callable[[Mapping[str, Any], Mapping[str, Track], Mapping[str, Mapping[str, Any]]], str | None]


def requested_length(row: Mapping[str, Any]) -> int:
    """The number of tracks the row's request asks for, :data:`DEFAULT_LENGTH` when it does not say."""
    intent = parse_intent(row.get("intent"))
    return int((intent or {}).get("length") or DEFAULT_LENGTH)


def _candidates(row: Mapping[str, Any], tracks: Mapping[str, Track]) -> list[Track]:
    shown = row.get("candidates")  # a numpy array from parquet: no truth value
    ids = [] if shown is None else [str(t) for t in shown]
    missing = [t for t in ids if t not in tracks]
    if missing:
        raise KeyError(f"prompt {row.get('prompt_id')!r}: candidates {missing[:5]} are not in the catalog")
    return [tracks[t] for t in ids]


def retrieval_order(
    row: Mapping[str, Any], tracks: Mapping[str, Track], records: Mapping[str, Mapping[str, Any]]
) -> str | None:
    """The first :func:`requested_length` candidates as shown; None for a row without candidates."""
    candidates = _candidates(row, tracks)
    if not candidates:
        return None
    return render_playlist(candidates[: requested_length(row)], candidates)


def oracle(
    row: Mapping[str, Any], tracks: Mapping[str, Track], records: Mapping[str, Mapping[str, Any]]
) -> str | None:
    """The :func:`requested_length` candidates that fit the hidden intent best (ties: shown order);
    None for a row without an intent or candidates."""
    intent = parse_intent(row.get("intent"))
    candidates = _candidates(row, tracks)
    if intent is None or not candidates:
        return None
    fits = [intent_fit(intent, records[t.track_id]) for t in candidates]
    order = sorted(range(len(candidates)), key=lambda i: -fits[i])  # stable: ties keep the shown order
    return render_playlist([candidates[i] for i in order[: requested_length(row)]], candidates)


BASELINES: dict[str, Baseline] = {"retrieval": retrieval_order, "oracle": oracle}


def baseline_rows(
    name: str,
    rows: Sequence[Mapping[str, Any]],
    tracks: Mapping[str, Track],
    records: Mapping[str, Mapping[str, Any]],
    baseline: Baseline | None = None,
) -> tuple[list[str], list[Mapping[str, Any]]]:
    """The answers of baseline ``name`` (or of ``baseline``, a trained one) and the rows it applies to
    (rows it has no answer for are left out)."""
    answer_of = baseline or BASELINES[name]
    answers, kept = [], []
    for row in rows:
        answer = answer_of(row, tracks, records)
        if answer is not None:
            answers.append(answer)
            kept.append(row)
    return answers, kept


def score_baselines(
    names: Sequence[str],
    rows: Sequence[Mapping[str, Any]],
    catalog_df: pd.DataFrame,
    *,
    seed: int = 0,
    n_replays: int = 8,
    reranker: Baseline | None = None,
) -> dict[str, EvalResult]:
    """Score each baseline of ``names`` on the rows it answers, as a model's playlists are scored.

    The oracle needs the attributes the simulator's fit reads (``replayable``), the ``reranker`` a
    trained one's answers (``evaluation.reranker.Reranker.playlist``); on a catalog without them,
    without a trained reranker, or where no row has an answer, a baseline is left out.
    """
    tracks, records = catalog_tracks(catalog_df), catalog_records(catalog_df)
    scored = {}
    for name in names:
        if (name == "oracle" and not replayable(catalog_df)) or (name == "reranker" and reranker is None):
            continue
        trained = reranker if name == "reranker" else None
        answers, kept = baseline_rows(name, rows, tracks, records, trained)
        if kept:
            scored[name] = score_playlists(answers, kept, catalog_df, seed=seed, n_replays=n_replays)
    return scored

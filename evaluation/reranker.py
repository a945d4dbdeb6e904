"""A learned reranker from the logged feedback: the classical learning-to-rank baseline an LLM has to beat.

What a team would ship instead of an LLM: LightGBM's ``LGBMRanker`` (lambdarank) over features of each
(request, candidate track), trained on the logged interactions of the *training* users only, and
answering an eval row with its best-scored :func:`~evaluation.baselines.requested_length` candidates,
rendered like a model's answer so it is scored by the same path (``evaluation.baselines``).

- **features** (:data:`FEATURES`): from the request's parse (``playlist.retrieval.Retriever.parse``, the
  one the retriever uses) genre, subgenre and artist match, the avoided-artist flag, closeness to the
  mood's energy and valence ranges and to the era (the retriever's ``closeness`` and scales), the
  requested length; from the catalog the track's energy, valence, year and popularity; and its
  position among the candidates (retrieval's order, which the ranker may lean on). A constraint the
  request does not state is missing (NaN), not a mismatch: LightGBM learns where missing values go.
- **labels**: each examined shown track's reward, the sum of its event weights as
  ``data_prep.rewards.track_rewards`` computes it (the prep's own weights, read from its manifest),
  graded 0 (skipped, disliked, removed) < 1 (played) < 2 (completed) < 3 (saved or liked and more).
  One group per shown response; tracks without events were never examined and are left out.
- **users**: the job's by-user split (``playlist.keys.split_of`` with the manifest's
  ``eval_fraction``); held-out users' logs only measure the fit (``heldout_ndcg_10``).

Example (candidates c1 rock 2010, c2 folk 1972, after training on logs where folk was saved, rock
skipped)::

    >>> reranker.playlist({"request": "folk, 1 song", "candidates": ["c1", "c2"], ...}, tracks, records)
    'c2 | Nick Drake - Pink Moon'
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from lightgbm import LGBMRanker

from evaluation.baselines import requested_length
from playlist.grounding import catalog_records
from playlist.keys import split_of
from playlist.prompts import Track, render_playlist
from playlist.retrieval import MOODS, Query, Retriever, closeness

FEATURES = (
    "genre_match",
    "subgenre_match",
    "artist_match",
    "avoided_artist",
    "energy_closeness",
    "valence_closeness",
    "era_closeness",
    "requested_length",
    "energy",
    "valence",
    "year",
    "popularity",
    "position",
)
# data_prep.schemas.TRACK_EVENTS, word for word: that module imports pyspark, which eval need not load.
TRACK_EVENTS = ("play", "skip", "skip_1", "skip_2", "skip_3", "complete", "save", "like", "dislike", "remove")
GRADE_FLOORS = (0.0, 1.0, 2.0)  # a reward at or above the i-th floor grades i + 1: played, completed, saved
NDCG_AT = 10
# Small and single-threaded: seconds on the smoke data, and the same trees from the same seed.
PARAMS: dict[str, Any] = {
    "objective": "lambdarank",
    "n_estimators": 100,
    "learning_rate": 0.05,
    "num_leaves": 15,
    "min_child_samples": 10,
    "n_jobs": 1,
    "deterministic": True,
    "force_row_wise": True,
    "verbose": -1,
}


def _asked(flag: np.ndarray, asked: bool) -> np.ndarray:
    return flag.astype(float) if asked else np.full(len(flag), np.nan)


def candidate_features(
    query: Query, records: Sequence[Mapping[str, Any]], positions: Sequence[int | None]
) -> pd.DataFrame:
    """The :data:`FEATURES` of tracks (their catalog rows) for one parsed request, a row per track.

    Args:
        query: The request's parse.
        records: The tracks' catalog rows (``genre, subgenre, artist, energy, valence, year, popularity``).
        positions: Each track's 0-based position among the request's candidates (None: not among them).
    """

    def column(name: str) -> np.ndarray:
        return np.array([np.nan if r.get(name) is None else float(r[name]) for r in records], dtype=float)

    genre, subgenre, artist = (
        np.array([str(r.get(k) or "") for r in records]) for k in ("genre", "subgenre", "artist")
    )
    energy, valence, year = column("energy"), column("valence"), column("year")
    mood = MOODS[query.mood] if query.mood else None
    nan = np.full(len(records), np.nan)
    return pd.DataFrame(
        {
            "genre_match": _asked(np.isin(genre, query.genres), bool(query.genres)),
            "subgenre_match": _asked(np.isin(subgenre, query.subgenres), bool(query.subgenres)),
            "artist_match": _asked(np.isin(artist, query.artists), bool(query.artists)),
            "avoided_artist": np.isin(artist, query.avoid_artists).astype(float),
            "energy_closeness": closeness(energy, mood.energy, 0.25) if mood and mood.energy else nan,
            "valence_closeness": closeness(valence, mood.valence, 0.25) if mood and mood.valence else nan,
            "era_closeness": closeness(year, query.era, 10.0) if query.era else nan,
            "requested_length": np.full(
                len(records), np.nan if query.length is None else float(query.length)
            ),
            "energy": energy,
            "valence": valence,
            "year": year,
            "popularity": column("popularity"),
            "position": np.array([np.nan if p is None else float(p) for p in positions]),
        },
        columns=list(FEATURES),
    )


def track_rewards(
    interactions: pd.DataFrame, weights: Mapping[str, float], early_skip: float, clip: float
) -> pd.DataFrame:
    """``response_id, track_id, reward``: :func:`data_prep.rewards.track_rewards` in pandas, same rule.

    A plain skip is early below ``early_skip`` of the track played (or when the play time is unknown).
    """
    tracks = interactions[interactions["event"].isin(TRACK_EVENTS) & interactions["track_id"].notna()]
    played = tracks["ms_played"] / tracks["track_ms"]
    late = (tracks["track_ms"] > 0) & (played >= early_skip)
    skip = np.where(late, weights["skip_late"], weights["skip_early"])
    weight = np.where(tracks["event"] == "skip", skip, tracks["event"].map(weights).fillna(0.0))
    summed = tracks.assign(reward=weight).groupby(["response_id", "track_id"], as_index=False)["reward"].sum()
    return summed.assign(reward=summed["reward"].clip(-clip, clip).round(6))


def grade(reward: pd.Series) -> np.ndarray:
    """Integer relevance grades of track rewards for lambdarank (:data:`GRADE_FLOORS`)."""
    return np.searchsorted(GRADE_FLOORS, reward.to_numpy(), side="right")


def ranking_groups(
    responses: pd.DataFrame,
    rewards: pd.DataFrame,
    catalog: pd.DataFrame,
    parser: Retriever,
    users: set[str],
) -> pd.DataFrame:
    """One row per examined shown track of ``users``' responses: ``response_id, user_key, track_id``,
    :data:`FEATURES` and ``grade``, grouped by response in a stable order (by response id, then as shown).

    Args:
        responses: Validated responses (``response_id, user_key, request, history, candidates, track_ids``).
        rewards: Output of :func:`track_rewards`; a shown track without a reward was not examined.
        catalog: The catalog the tracks come from.
        parser: Parses the requests (its catalog's genres, subgenres and artists).
        users: The user keys whose responses count; every other user's are never read.
    """
    records = catalog_records(catalog)  # the eval's own reading of the catalog: the same features there
    reward = {(r.response_id, r.track_id): r.reward for r in rewards.itertuples()}
    frames = []
    mine = responses[responses["user_key"].isin(users)].sort_values("response_id", kind="stable")
    for r in mine.itertuples():
        shown = [t for t in dict.fromkeys(str(t) for t in r.track_ids) if (r.response_id, t) in reward]
        if not shown:
            continue
        candidates = [] if r.candidates is None else [str(t) for t in r.candidates]
        where = {t: i for i, t in enumerate(candidates)}
        history = [] if r.history is None else [str(h) for h in r.history]
        features = candidate_features(
            parser.parse(str(r.request), history), [records[t] for t in shown], [where.get(t) for t in shown]
        )
        keys = pd.DataFrame({"response_id": r.response_id, "user_key": r.user_key, "track_id": shown})
        grades = grade(pd.Series([reward[(r.response_id, t)] for t in shown]))
        frames.append(pd.concat([keys, features], axis=1).assign(grade=grades))
    columns = ["response_id", "user_key", "track_id", *FEATURES, "grade"]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=columns)


def group_sizes(groups: pd.DataFrame) -> list[int]:
    """Rows per response, in the order the responses appear (their rows must be contiguous)."""
    return groups.groupby("response_id", sort=False).size().tolist()


def ndcg(groups: pd.DataFrame, scores: np.ndarray, k: int = NDCG_AT) -> float | None:
    """Mean NDCG@k of ``scores`` over the groups (gain ``2^grade - 1``, LightGBM's), ties in row order;
    groups whose tracks all grade 0 have no ideal order and are left out (None when none is left)."""
    values = []
    discount = 1.0 / np.log2(np.arange(2, k + 2))
    for _, idx in groups.groupby("response_id", sort=False).indices.items():
        gains = 2.0 ** groups["grade"].to_numpy()[idx] - 1.0
        ideal = np.sort(gains)[::-1][:k] @ discount[: min(k, len(idx))]
        if ideal > 0:
            order = np.argsort(-scores[idx], kind="stable")[:k]
            values.append(float(gains[order] @ discount[: len(order)]) / ideal)
    return float(np.mean(values)) if values else None


@dataclass
class Reranker:
    """A trained ranker and the request parser its features need."""

    model: LGBMRanker
    parser: Retriever

    def scores(self, query: Query, records: Sequence[Mapping[str, Any]]) -> np.ndarray:
        """The model's score of each candidate (``records`` in the order shown)."""
        features = candidate_features(query, records, list(range(len(records))))
        return np.asarray(self.model.predict(features))

    def playlist(
        self, row: Mapping[str, Any], tracks: Mapping[str, Track], records: Mapping[str, Mapping[str, Any]]
    ) -> str | None:
        """The :func:`requested_length` best-scored candidates (ties: shown order), rendered as an answer;
        None for a row without candidates. A :data:`evaluation.baselines.Baseline`."""
        shown, history = row.get("candidates"), row.get("history")  # numpy arrays from parquet
        ids = [] if shown is None else [str(t) for t in shown]
        if not ids:
            return None
        query = self.parser.parse(str(row["request"]), [] if history is None else [str(h) for h in history])
        scores = self.scores(query, [records[t] for t in ids])
        order = sorted(range(len(ids)), key=lambda i: -scores[i])  # stable: ties keep the shown order
        candidates = [tracks[t] for t in ids]
        return render_playlist([candidates[i] for i in order[: requested_length(row)]], candidates)


def fit_reranker(groups: pd.DataFrame, parser: Retriever, seed: int) -> Reranker:
    """Train lambdarank on ``groups`` (from :func:`ranking_groups`), deterministically from ``seed``."""
    model = LGBMRanker(**PARAMS, random_state=seed)
    model.fit(groups[list(FEATURES)], groups["grade"], group=group_sizes(groups))
    return Reranker(model, parser)


def train_reranker(
    prepared: Path, seed: int, *, weights: Mapping[str, float], early_skip: float, track_clip: float
) -> tuple[Reranker | None, dict[str, float]]:
    """Train the reranker on the training users' logs of a prepared dataset and measure it on the rest.

    Args:
        prepared: A data_prep output (``validated/{responses,interactions,catalog}``, ``manifest.json``).
        seed: LightGBM's seed.
        weights: every event's reward weight, as the prep job resolved them (its manifest's config).
        early_skip: the fraction of a track before which a skip is early.
        track_clip: the bound on one track's absolute reward.

    Returns:
        The reranker (None when the training users left no examined track to learn from) and its
        figures: ``train_rows``, ``train_groups``, ``train_users``, ``heldout_groups`` and, where the
        held-out users have graded tracks, ``heldout_ndcg_10`` with ``heldout_ndcg_10_retrieval``
        (the candidates' shown order on the same groups).

    Raises:
        ValueError: a user of the eval rows falls on the training side of the split (the manifest and
            the rows disagree: training on them would leak the held-out users).
    """
    config = json.loads((prepared / "manifest.json").read_text())["config"]
    responses = pd.read_parquet(prepared / "validated" / "responses")
    side = {str(u): split_of(str(u), float(config["eval_fraction"])) for u in responses["user_key"].unique()}
    train = {u for u, s in side.items() if s == "train"}
    leaked = train & set(pd.read_parquet(prepared / "eval", columns=["user_key"])["user_key"])
    if leaked:
        raise ValueError(
            f"eval rows of {len(leaked)} user(s) fall on the training side, e.g. {min(leaked)!r}"
        )
    return reranker_from_logs(
        responses,
        pd.read_parquet(prepared / "validated" / "interactions"),
        pd.read_parquet(prepared / "validated" / "catalog"),
        train,
        seed,
        weights=weights,
        early_skip=early_skip,
        track_clip=track_clip,
    )


def reranker_from_logs(
    responses: pd.DataFrame,
    interactions: pd.DataFrame,
    catalog: pd.DataFrame,
    train: set[str],
    seed: int,
    *,
    weights: Mapping[str, float],
    early_skip: float,
    track_clip: float,
) -> tuple[Reranker | None, dict[str, float]]:
    """:func:`train_reranker` on validated log frames: fit on the ``train`` users' responses, measure on the rest.

    The flywheel (``encore.flywheel``) calls it with the prepared logs and the rounds' own logs appended.
    """
    rewards = track_rewards(interactions, weights, early_skip, track_clip)
    parser = Retriever(catalog)
    groups = ranking_groups(responses, rewards, catalog, parser, train)
    heldout = ranking_groups(
        responses, rewards, catalog, parser, set(responses["user_key"].astype(str)) - train
    )
    figures: dict[str, float] = {
        "train_rows": len(groups),
        "train_groups": groups["response_id"].nunique(),
        "train_users": groups["user_key"].nunique(),
        "heldout_groups": heldout["response_id"].nunique(),
    }
    if groups.empty:
        return None, figures
    reranker = fit_reranker(groups, parser, seed)
    if not heldout.empty:
        learned = ndcg(heldout, np.asarray(reranker.model.predict(heldout[list(FEATURES)])))
        shown = ndcg(heldout, -heldout["position"].fillna(np.inf).to_numpy())
        for name, value in (("heldout_ndcg_10", learned), ("heldout_ndcg_10_retrieval", shown)):
            if value is not None:  # None: every held-out track graded 0
                figures[name] = value
    return reranker, figures

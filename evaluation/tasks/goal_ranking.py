"""Retrieval against goal playlists (CPCD): Hit@k, MRR@k and recall@k per turn, macro over conversations.

Example (goal playlist ``{g1, g2, g3, g4}``; turn 0 liked ``[g1, x]``, so ``g1`` seeds later turns)::

    turn 0: ranked [x, g2, g1, y]   gold {g1, g2, g3, g4}   hit@1 0, hit@5 1, mrr@5 1/2, recall@5 2/4
    turn 1: ranked [g1, y, g3]      g1 is a seed: ranked [y, g3], gold {g2, g3, g4}
                                    hit@1 0, hit@5 1, mrr@5 1/2, recall@5 1/3

    the conversation: hit@5 = 1, mrr@5 = 1/2, recall@5 = (2/4 + 1/3) / 2 = 5/12
    the data set: the mean over conversations (macro)

Scoring rule, as the CPCD paper's evaluation script (google-research-datasets/cpcd ``eval.py``) computes it:
at each turn the system ranks tracks given the conversation so far; the gold set is the whole goal
playlist. Seed tracks, the first ``n_seed`` (3) liked tracks of every earlier turn, are removed from both
the ranking and the gold set (they were already given); a turn whose gold set is then empty is skipped.
``hit@k`` is 1 when a gold track is among the first k, ``mrr@k`` the reciprocal rank of the first gold
track within the first k (0 when none), ``recall@k`` the gold tracks among the first k over the gold set's
size. A conversation's score is the mean over its scored turns; the reported score is the mean over
conversations ("macro"). Unlike the official script, a ranking may be shorter than k (an LLM's playlist):
the missing positions are misses. The official script maps tracks to near-duplicate clusters first; the
dev file here has no cluster ids, so tracks are compared by id.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Mapping, Sequence

KS = (1, 5, 10, 20)
N_SEED = 3  # liked tracks of each earlier turn given as seeds (the official script's default)


def hit_at_k(gold: Collection[str], ranked: Sequence[str], k: int) -> float:
    """1.0 when any of the first ``k`` ranked tracks is gold, else 0.0."""
    return float(any(t in gold for t in ranked[:k]))


def mrr_at_k(gold: Collection[str], ranked: Sequence[str], k: int) -> float:
    """The reciprocal rank of the first gold track among the first ``k`` (0.0 when none)."""
    for i, t in enumerate(ranked[:k], start=1):
        if t in gold:
            return 1.0 / i
    return 0.0


def recall_at_k(gold: Collection[str], ranked: Sequence[str], k: int) -> float:
    """The distinct gold tracks among the first ``k`` over the number of gold tracks.

    Raises:
        ValueError: ``gold`` is empty.
    """
    if not gold:
        raise ValueError("recall needs at least one gold track")
    return len(set(gold).intersection(ranked[:k])) / len(set(gold))


def turn_scores(gold: Collection[str], ranked: Sequence[str], ks: Sequence[int] = KS) -> dict[str, float]:
    """``hit@k``, ``mrr@k`` and ``recall@k`` of one ranking for every ``k`` in ``ks``."""
    scores: dict[str, float] = {}
    for k in ks:
        scores[f"hit@{k}"] = hit_at_k(gold, ranked, k)
        scores[f"mrr@{k}"] = mrr_at_k(gold, ranked, k)
        scores[f"recall@{k}"] = recall_at_k(gold, ranked, k)
    return scores


def seed_tracks(liked_per_turn: Sequence[Sequence[str]], n_seed: int = N_SEED) -> list[list[str]]:
    """Per turn, the seeds it adds for the turns after it: the first ``n_seed`` liked tracks."""
    return [list(liked[:n_seed]) for liked in liked_per_turn]


def conversation_scores(
    ranked_per_turn: Sequence[Sequence[str]],
    goal: Sequence[str],
    liked_per_turn: Sequence[Sequence[str]],
    ks: Sequence[int] = KS,
    n_seed: int = N_SEED,
    turns: Collection[int] | None = None,
) -> dict[str, float] | None:
    """One conversation's scores: the mean over its scored turns (None when no turn is scored).

    Args:
        ranked_per_turn: the system's ranking at each turn, best first.
        goal: the conversation's goal playlist.
        liked_per_turn: the tracks liked at each turn (for the seeds of later turns).
        ks: cut-offs.
        n_seed: liked tracks of each earlier turn removed as seeds.
        turns: score only these turn indices (a subsample, e.g. :func:`last_scorable_turn`); the
            rankings of the other turns are ignored, their likes still seed the turns after them.

    Raises:
        ValueError: ``ranked_per_turn`` and ``liked_per_turn`` differ in length.
    """
    if len(ranked_per_turn) != len(liked_per_turn):
        raise ValueError(f"{len(ranked_per_turn)} rankings for {len(liked_per_turn)} turns")
    seeds: set[str] = set()
    per_turn: list[dict[str, float]] = []
    pairs = zip(ranked_per_turn, seed_tracks(liked_per_turn, n_seed), strict=True)
    for turn, (ranked, new_seeds) in enumerate(pairs):
        gold = [t for t in dict.fromkeys(goal) if t not in seeds]
        if gold and (turns is None or turn in turns):
            kept = [t for t in dict.fromkeys(ranked) if t not in seeds]
            per_turn.append(turn_scores(set(gold), kept, ks))
        seeds.update(new_seeds)  # seeds of this turn apply from the next turn on
    if not per_turn:
        return None
    return {name: sum(s[name] for s in per_turn) / len(per_turn) for name in per_turn[0]}


def last_scorable_turn(
    goal: Sequence[str], liked_per_turn: Sequence[Sequence[str]], n_seed: int = N_SEED
) -> int | None:
    """The last turn whose gold set is not empty once the earlier turns' seeds are removed (None if none)."""
    seeds: set[str] = set()
    last = None
    for turn, new_seeds in enumerate(seed_tracks(liked_per_turn, n_seed)):
        if any(t not in seeds for t in goal):
            last = turn
        seeds.update(new_seeds)
    return last


def macro_average(per_conversation: Sequence[Mapping[str, float] | None]) -> dict[str, float]:
    """The mean of each metric over the scored conversations, plus ``n_conversations``."""
    scored = [s for s in per_conversation if s is not None]
    totals: dict[str, float] = defaultdict(float)
    for s in scored:
        for name, value in s.items():
            totals[name] += value
    out = {name: total / len(scored) for name, total in totals.items()}
    out["n_conversations"] = float(len(scored))
    return out

"""The logging policy: fill a playlist from retrieved candidates, with a given quality.

With probability ``quality`` a slot gets the remaining candidate that best fits the hidden intent,
otherwise a random remaining candidate, so a high-quality policy's playlists are better on average
and pairs of responses to the same request carry a learnable preference.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from playlist.simulator.intents import intent_fit

DEFAULT_LENGTH = 10  # playlist length when the request does not say


@dataclass(frozen=True)
class Policy:
    """A logged model version: its name in the ``policy`` column and how often it picks the best fit."""

    name: str
    quality: float


def build_playlist(
    candidates: Sequence[Mapping[str, Any]], intent: Mapping[str, Any], quality: float, rng: random.Random
) -> list[str]:
    """Track ids of a playlist of the intent's length (or :data:`DEFAULT_LENGTH`) chosen from ``candidates``.

    Ties between equally fitting candidates go to the one retrieved first.
    """
    n = min(intent.get("length") or DEFAULT_LENGTH, len(candidates))
    fit = {str(c["track_id"]): intent_fit(intent, c) for c in candidates}
    remaining = [str(c["track_id"]) for c in candidates]
    chosen: list[str] = []
    for _ in range(n):
        # max() keeps the first of equal fits, so ties go to the candidate retrieved first.
        pick = max(remaining, key=lambda tid: fit[tid]) if rng.random() < quality else rng.choice(remaining)
        remaining.remove(pick)
        chosen.append(pick)
    return chosen

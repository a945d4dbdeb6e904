"""Hidden intents behind simulated requests: sampling from a user's taste, fit of a track, refinements.

An intent is a plain dict in the JSON shape of docs/architecture.md::

    {"category": "genre_mood", "genre": "folk", "mood": "mellow", "energy": [0.0, 0.45],
     "valence": None, "era": [1990, 1999], "length": 8, "avoid_artists": ["Mara Lindqvist"]}

Every key is present; a constraint that does not apply is None (``[]`` for ``avoid_artists``).
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from playlist.retrieval import MOODS, decade_range, shift_era
from playlist.simulator.users import User

INTENT_KEYS = ("category", "genre", "mood", "energy", "valence", "era", "length", "avoid_artists")
# Category -> sampling weight; the name lists the constraints a request of that kind carries.
CATEGORIES = {
    "genre": 0.08,
    "mood": 0.12,
    "genre_mood": 0.2,
    "genre_era": 0.14,
    "mood_era": 0.08,
    "genre_mood_era": 0.14,
    "genre_avoid": 0.08,
    "genre_mood_avoid": 0.14,
}
LENGTHS = (5, 8, 10, 12, 15)
MIN_MATCHES = 8  # a sampled intent must be satisfiable by at least this many catalog tracks


@dataclass(frozen=True)
class IntentSpace:
    """The catalog attributes intents are sampled against (arrays aligned with catalog rows)."""

    genre: np.ndarray
    energy: np.ndarray
    valence: np.ndarray
    year: np.ndarray
    famous: dict[str, list[str]]  # genre -> its most popular artists, most popular first

    @classmethod
    def from_catalog(cls, catalog: pd.DataFrame) -> IntentSpace:
        fame = catalog.groupby(["genre", "artist"])["popularity"].max().reset_index()
        famous = {
            g: list(grp.sort_values(["popularity", "artist"], ascending=[False, True])["artist"][:5])
            for g, grp in fame.groupby("genre")
        }
        return cls(
            genre=catalog["genre"].to_numpy(),
            energy=catalog["energy"].to_numpy(dtype=float),
            valence=catalog["valence"].to_numpy(dtype=float),
            year=catalog["year"].to_numpy(dtype=int),
            famous=famous,
        )

    def matches(self, intent: Mapping[str, Any]) -> int:
        """How many catalog tracks satisfy every constraint of ``intent`` (avoided artists aside)."""
        ok = np.ones(len(self.genre), dtype=bool)
        if intent["genre"]:
            ok &= self.genre == intent["genre"]
        for key, values in (("energy", self.energy), ("valence", self.valence), ("era", self.year)):
            if intent[key]:
                lo, hi = intent[key]
                ok &= (values >= lo) & (values <= hi)
        return int(ok.sum())


def empty_intent(category: str) -> dict[str, Any]:
    """An intent with every constraint unset."""
    return {"category": category, "genre": None, "mood": None, "energy": None, "valence": None,
            "era": None, "length": None, "avoid_artists": []}  # fmt: skip


def with_mood(intent: dict[str, Any], mood: str) -> dict[str, Any]:
    """``intent`` with ``mood`` and the energy and valence ranges the mood table gives it."""
    spec = MOODS[mood]
    energy = list(spec.energy) if spec.energy else None
    valence = list(spec.valence) if spec.valence else None
    return {**intent, "mood": mood, "energy": energy, "valence": valence}


def sample_intent(user: User, space: IntentSpace, rng: random.Random) -> dict[str, Any]:
    """Draw a satisfiable intent, mostly from ``user``'s taste (genre, energy, era, disliked artists)."""
    genres = sorted(user.genre_prefs)
    for _ in range(30):
        category = rng.choices(list(CATEGORIES), weights=list(CATEGORIES.values()))[0]
        intent = empty_intent(category)
        if "genre" in category:
            # Mostly a genre the user likes; sometimes anything, as people explore.
            weights = [user.genre_prefs[g] for g in genres] if rng.random() < 0.85 else None
            intent["genre"] = rng.choices(genres, weights=weights)[0]
        if "mood" in category:
            moods = sorted(MOODS)
            weights = [1.0 / (0.15 + abs(_mid(MOODS[m].energy, 0.5) - user.energy)) for m in moods]
            intent = with_mood(intent, rng.choices(moods, weights=weights)[0])
        if "era" in category:
            centre = rng.randint(*user.era) if rng.random() < 0.7 else rng.randint(1960, 2025)
            intent["era"] = list(decade_range(min(centre, 2020) // 10 * 10))
        if "avoid" in category:
            genre = intent["genre"] or user.top_genres(1)[0]
            pool = [a for a in user.disliked_artists if a in space.famous.get(genre, [])]
            pool = pool or space.famous.get(genre, [])[:4]
            intent["avoid_artists"] = sorted(rng.sample(pool, k=min(len(pool), 1 + (rng.random() < 0.2))))
        if rng.random() < 0.4:
            intent["length"] = rng.choice(LENGTHS)
        if space.matches(intent) >= MIN_MATCHES:
            return intent
    fallback = empty_intent("genre")
    fallback["genre"] = user.top_genres(1)[0]
    return fallback


def _mid(bounds: tuple[float, float] | None, default: float) -> float:
    return default if bounds is None else (bounds[0] + bounds[1]) / 2


def _closeness(value: float, bounds: Sequence[float], scale: float) -> float:
    lo, hi = bounds
    return max(0.0, 1.0 - max(lo - value, value - hi, 0.0) / scale)


def intent_fit(intent: Mapping[str, Any], track: Mapping[str, Any]) -> float:
    """How well ``track`` fulfils ``intent``, in [0, 1]; 0 for an avoided artist.

    The product of one score per constraint that applies: genre (1 on match, else 0.1), energy and
    valence (1 inside the range, 0.5 at 0.1 outside it), era (1 inside, 0.5 at 5 years outside).
    A product, because one badly missed constraint spoils a track for the listener.
    """
    if track["artist"] in intent["avoid_artists"]:
        return 0.0
    fit = 1.0
    if intent["genre"] and track["genre"] != intent["genre"]:
        fit *= 0.1
    if intent["energy"]:
        fit *= max(0.05, _closeness(float(track["energy"]), intent["energy"], 0.2))
    if intent["valence"]:
        fit *= max(0.05, _closeness(float(track["valence"]), intent["valence"], 0.2))
    if intent["era"]:
        fit *= max(0.05, _closeness(float(track["year"]), intent["era"], 10.0))
    return fit


def choose_refinement(
    user: User, intent: Mapping[str, Any], tracks: Sequence[Mapping[str, Any]], rng: random.Random
) -> tuple[str, str] | None:
    """What a dissatisfied ``user`` asks to change after seeing ``tracks``: (kind, value) or None.

    Kinds: ``avoid`` (an artist), ``mood`` (a mood name), ``era`` (``older`` or ``newer``).
    """
    shown = Counter(t["artist"] for t in tracks if t["artist"] not in intent["avoid_artists"])
    options: list[tuple[str, str]] = []
    disliked = sorted(a for a in shown if a in user.disliked_artists)
    if disliked and rng.random() < 0.6:
        return "avoid", disliked[0]
    if shown:
        artist, n = min(shown.items(), key=lambda kv: (-kv[1], kv[0]))
        if n >= 2:
            options.append(("avoid", artist))
    if user.energy > 0.6 and intent["mood"] not in ("upbeat", "energetic"):
        options.append(("mood", rng.choice(["upbeat", "energetic"])))
    if user.energy < 0.4 and intent["mood"] not in ("mellow", "chill", "calm"):
        options.append(("mood", rng.choice(["mellow", "chill", "calm"])))
    mean_year = sum(int(t["year"]) for t in tracks) / max(len(tracks), 1)
    if tracks and mean_year > user.era[1] + 5 and shift_era(_era(intent), "older"):
        options.append(("era", "older"))
    if tracks and mean_year < user.era[0] - 5 and shift_era(_era(intent), "newer"):
        options.append(("era", "newer"))
    return rng.choice(options) if options else None


def _era(intent: Mapping[str, Any]) -> tuple[int, int] | None:
    return (intent["era"][0], intent["era"][1]) if intent["era"] else None


def refine_intent(intent: Mapping[str, Any], kind: str, value: str) -> dict[str, Any]:
    """The intent after a refinement; its category becomes ``refine``."""
    new = {**intent, "category": "refine", "avoid_artists": list(intent["avoid_artists"])}
    if kind == "avoid":
        new["avoid_artists"] = sorted({*new["avoid_artists"], value})
    elif kind == "mood":
        new = with_mood(new, value)
    elif kind == "era":
        era = shift_era(_era(intent), value)
        new["era"] = list(era) if era else intent["era"]
    else:
        raise ValueError(f"unknown refinement kind {kind!r}")
    return new

"""Simulated users: genre tastes, preferred energy and era, patience, and a few artists they dislike."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pandas as pd


@dataclass(frozen=True)
class User:
    """One listener's hidden taste.

    Attributes:
        user_id: stable id, e.g. ``u0007``.
        genre_prefs: genre -> preference weight, summing to 1 (a few genres carry most of it).
        energy: preferred energy in [0, 1].
        era: preferred years (inclusive).
        patience: in [0, 1]; patient users skip less and listen further down a playlist.
        disliked_artists: artists this user skips, dislikes and asks to avoid.
    """

    user_id: str
    genre_prefs: dict[str, float]
    energy: float
    era: tuple[int, int]
    patience: float
    disliked_artists: tuple[str, ...]

    def top_genres(self, n: int = 3) -> list[str]:
        """The ``n`` genres this user likes most."""
        return sorted(self.genre_prefs, key=lambda g: (-self.genre_prefs[g], g))[:n]


def make_users(catalog: pd.DataFrame, n_users: int, gen: np.random.Generator) -> list[User]:
    """Draw ``n_users`` users whose tastes fit ``catalog``'s genres and artists."""
    genres = sorted(catalog["genre"].unique())
    # The most popular artists of each genre: the ones a user has heard enough of to dislike.
    fame = catalog.groupby(["genre", "artist"])["popularity"].max().reset_index()
    famous = {
        g: list(grp.sort_values(["popularity", "artist"], ascending=[False, True])["artist"][:8])
        for g, grp in fame.groupby("genre")
    }
    users = []
    for i in range(n_users):
        prefs = gen.dirichlet(np.full(len(genres), 0.35))
        centre = int(gen.integers(1968, 2021))
        user = User(
            user_id=f"u{i + 1:04d}",
            genre_prefs={g: round(float(p), 4) for g, p in zip(genres, prefs, strict=True)},
            energy=round(float(gen.beta(2.0, 2.0)), 3),
            era=(centre - 12, centre + 12),
            patience=round(float(gen.beta(2.0, 2.0)), 3),
            disliked_artists=(),
        )
        pool = [a for g in user.top_genres(2) for a in famous[g]]
        disliked = gen.choice(pool, size=min(2, len(pool)), replace=False)
        users.append(replace(user, disliked_artists=tuple(sorted(str(a) for a in disliked))))
    return users


def taste_fit(user: User, track: Mapping[str, Any]) -> float:
    """How much ``user`` likes ``track`` regardless of the request, in [0, 1] (0 for a disliked artist)."""
    if track["artist"] in user.disliked_artists:
        return 0.0
    genre = user.genre_prefs.get(track["genre"], 0.0) / max(user.genre_prefs.values())
    energy = 1.0 - abs(user.energy - float(track["energy"]))
    lo, hi = user.era
    year = int(track["year"])
    era = max(0.0, 1.0 - max(lo - year, year - hi, 0) / 20.0)
    return 0.5 * genre**0.5 + 0.3 * energy + 0.2 * era

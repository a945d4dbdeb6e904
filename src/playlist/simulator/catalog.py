"""Synthetic music catalog: artists and tracks whose audio features, years and popularity follow genre.

Each artist belongs to one genre and mostly one subgenre; a track's features are its artist's plus
noise, and an artist's features are the genre's plus noise, so genre, mood and era are learnable.
Popularity is Zipf-like: a few artists and tracks are very popular, most are not.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from playlist.prompts import Track
from playlist.simulator.names import distinct_artist_names, distinct_titles

CATALOG_COLUMNS = (
    "track_id", "title", "artist", "album", "genre", "subgenre", "year", "duration_ms", "popularity",
    "energy", "valence", "danceability", "acousticness", "tempo",
)  # fmt: skip


@dataclass(frozen=True)
class Genre:
    """Typical features of a genre: feature means, tempo (bpm), debut years of its artists, length (s)."""

    subgenres: tuple[str, ...]
    energy: float
    valence: float
    danceability: float
    acousticness: float
    tempo: float
    debut: tuple[int, int]
    duration_s: int
    weight: float = 1.0


# fmt: off
GENRES: dict[str, Genre] = {  # subgenres, energy, valence, danceability, acousticness, tempo, debut, s, weight
    "folk":       Genre(("singer-songwriter", "americana", "celtic"), .32, .45, .42, .80, 100, (1960, 2020), 230),
    "rock":       Genre(("classic rock", "punk", "grunge", "garage"), .72, .50, .48, .15, 125, (1960, 2018), 240, 1.3),
    "pop":        Genre(("synthpop", "power pop", "teen pop"), .68, .68, .70, .20, 118, (1968, 2024), 205, 1.3),
    "hip hop":    Genre(("boom bap", "trap", "conscious rap"), .66, .50, .78, .10, 95, (1982, 2024), 215, 1.1),
    "electronic": Genre(("house", "techno", "drum and bass", "synthwave"), .78, .50, .76, .06, 126, (1982, 2024), 300),
    "jazz":       Genre(("bebop", "cool jazz", "fusion", "swing"), .40, .52, .52, .70, 115, (1960, 2012), 320),
    "classical":  Genre(("baroque", "opera", "chamber", "minimalism"), .20, .32, .25, .92, 95, (1960, 2020), 370, .8),
    "r&b":        Genre(("quiet storm", "contemporary r&b", "alternative r&b"), .55, .55, .70, .25, 98, (1975, 2024), 230),
    "country":    Genre(("bluegrass", "outlaw country", "honky tonk"), .60, .62, .58, .45, 120, (1962, 2024), 200),
    "metal":      Genre(("thrash", "doom", "death metal", "power metal"), .88, .25, .40, .03, 140, (1972, 2022), 290, .8),
    "indie":      Genre(("shoegaze", "lo-fi", "slowcore", "jangle"), .55, .45, .50, .35, 118, (1985, 2024), 225),
    "ambient":    Genre(("drone", "new age", "downtempo"), .15, .35, .30, .75, 85, (1975, 2024), 380, .7),
    "latin":      Genre(("salsa", "reggaeton", "bossa nova", "cumbia"), .72, .75, .78, .30, 110, (1962, 2024), 220),
    "soul":       Genre(("motown", "funk", "gospel", "northern soul"), .60, .68, .66, .30, 105, (1960, 2005), 200, .9),
}
# fmt: on


def make_catalog(seed: int = 0, n_artists: int = 300, n_tracks: int = 2400) -> pd.DataFrame:
    """Generate a catalog with exactly ``n_tracks`` rows and :data:`CATALOG_COLUMNS` columns.

    Args:
        seed: seeds every random draw; the same seed gives the same catalog.
        n_artists: number of artists (each has at least one track).
        n_tracks: number of tracks, at least ``n_artists``.
    """
    if n_tracks < n_artists or n_artists < 1:
        raise ValueError(f"need 1 <= n_artists <= n_tracks, got {n_artists} artists, {n_tracks} tracks")
    gen = np.random.default_rng(seed)
    rng = random.Random(seed)
    names = list(GENRES)
    weights = np.array([GENRES[g].weight for g in names])
    artist_genre = [names[i] for i in gen.choice(len(names), size=n_artists, p=weights / weights.sum())]
    artist_names = distinct_artist_names(rng, artist_genre)
    # Zipf-like fame: the artist of rank r gets weight 1 / r ** 0.9, in a random order.
    fame = 1.0 / np.arange(1, n_artists + 1) ** 0.9
    gen.shuffle(fame)
    counts = 1 + gen.multinomial(n_tracks - n_artists, (fame**0.5) / (fame**0.5).sum())

    # Subgenres shift energy and valence a little, so "punk" is harder than "classic rock" within rock.
    subs = [s for g in names for s in GENRES[g].subgenres]
    sub_shift = dict(zip(subs, gen.normal(0, 0.07, size=(len(subs), 2)), strict=True))
    specs = [GENRES[g] for g in artist_genre]
    main_sub = [sp.subgenres[int(gen.integers(len(sp.subgenres)))] for sp in specs]
    means = np.array([[sp.energy, sp.valence, sp.danceability, sp.acousticness] for sp in specs])
    base = means + gen.normal(0, 0.1, size=means.shape)
    debut = np.array([gen.integers(sp.debut[0], sp.debut[1] + 1) for sp in specs])

    # Everything per track is drawn in bulk; `owner` maps each track to its artist.
    owner = np.repeat(np.arange(n_artists), counts)
    keep = gen.random(n_tracks) < 0.8  # most of an artist's tracks are in its main subgenre
    other = gen.integers(0, 1 << 30, n_tracks)
    sub = [
        main_sub[a] if k else specs[a].subgenres[j % len(specs[a].subgenres)]
        for a, k, j in zip(owner, keep, other, strict=True)
    ]
    feats = base[owner] + gen.normal(0, [0.1, 0.13, 0.08, 0.08], size=(n_tracks, 4))
    feats[:, :2] += np.array([sub_shift[s] for s in sub])
    feats = np.clip(feats, 0.0, 1.0)
    tempo_mean = np.array([sp.tempo for sp in specs])[owner]
    tempo = np.clip(tempo_mean + 40 * (feats[:, 0] - means[owner, 0]) + gen.normal(0, 10, n_tracks), 50, 200)
    year = np.minimum(2025, debut[owner] + gen.exponential(7.0, n_tracks)).astype(int)
    dur_mean = np.array([sp.duration_s for sp in specs], dtype=float)[owner]
    duration = (np.maximum(90, gen.normal(dur_mean, dur_mean * 0.2)) * 1000).astype(int)
    # Popularity is a log scale of Zipf-like play counts, like streaming services' 0-100 scores.
    plays = fame[owner] * gen.lognormal(0.0, 0.6, n_tracks)
    rank = np.empty(n_tracks, dtype=float)
    rank[np.argsort(-plays, kind="stable")] = np.arange(1, n_tracks + 1)
    popularity = np.rint(100 * np.sqrt(1 - np.log(rank) / np.log(n_tracks + 1))).astype(int)

    titles: list[str] = []
    albums: list[str] = []
    for n in counts:
        titles += distinct_titles(rng, int(n))
        album_names = distinct_titles(rng, 1 + int(n) // 6)
        albums += [rng.choice(album_names) for _ in range(int(n))]
    return pd.DataFrame(
        {
            "track_id": [f"t{i + 1:05d}" for i in range(n_tracks)],
            "title": titles,
            "artist": [artist_names[a] for a in owner],
            "album": albums,
            "genre": [artist_genre[a] for a in owner],
            "subgenre": sub,
            "year": year,
            "duration_ms": duration,
            "popularity": popularity,
            "energy": feats[:, 0].round(3),
            "valence": feats[:, 1].round(3),
            "danceability": feats[:, 2].round(3),
            "acousticness": feats[:, 3].round(3),
            "tempo": tempo.round(1),
        },
        columns=list(CATALOG_COLUMNS),
    )


def as_prompt_track(row: Mapping[str, Any]) -> Track:
    """The few attributes a prompt shows for one catalog row."""
    return Track(
        track_id=str(row["track_id"]),
        artist=str(row["artist"]),
        title=str(row["title"]),
        genre=str(row["genre"]),
        year=int(row["year"]),
        energy=float(row["energy"]),
        valence=float(row["valence"]),
    )

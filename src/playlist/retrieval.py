"""Lexical candidate retrieval over the catalog, used by the simulator's policy and the registered model.

A request is parsed into genre, subgenre, mood, era and artist words (the mood table :data:`MOODS`
is shared with the simulator, so its phrasing and this parser agree); every track is scored on how
well its attributes match, plus a small popularity prior, and the best ``k`` are returned.

Example::

    >>> retriever = Retriever(load_catalog("data/catalog.jsonl"))
    >>> retriever.retrieve("mellow folk from the 90s, no Mara Lindqvist", k=20)
    ['t00412', 't00087', ...]
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from playlist.prompts import normalise


@dataclass(frozen=True)
class Mood:
    """A mood's audio-feature ranges and the words and occasions that express it."""

    energy: tuple[float, float] | None
    valence: tuple[float, float] | None
    words: tuple[str, ...]
    occasions: tuple[str, ...]


# The one mood table: the simulator samples intents and phrases requests from it, the retriever
# parses requests with it. Words and occasions are matched as whole phrases after `normalise`.
# fmt: off
MOODS: dict[str, Mood] = {
    "mellow": Mood((0.0, 0.45), None, ("mellow", "soft", "gentle"), ("for a rainy sunday", "for a slow morning")),
    "chill": Mood((0.0, 0.4), (0.3, 0.8), ("chill", "relaxed", "laid back"), ("for studying", "for reading")),
    "calm": Mood((0.0, 0.3), None, ("calm", "peaceful", "soothing"), ("to fall asleep to", "for meditation")),
    "upbeat": Mood((0.6, 1.0), (0.55, 1.0), ("upbeat", "feel good", "bouncy"), ("to run to", "for a road trip")),
    "energetic": Mood((0.75, 1.0), None, ("energetic", "high energy", "intense"), ("for the gym", "for a workout")),
    "happy": Mood(None, (0.65, 1.0), ("happy", "cheerful", "joyful"), ("for a sunny afternoon", "for a party")),
    "sad": Mood((0.0, 0.55), (0.0, 0.35), ("sad", "melancholy", "heartbroken"),
                ("for a breakup", "for a lonely night")),
    "dark": Mood((0.4, 1.0), (0.0, 0.3), ("dark", "brooding", "moody"), ("for a late night drive", "for a storm")),
    "romantic": Mood((0.2, 0.6), (0.45, 0.85), ("romantic", "tender", "sensual"),
                     ("for a date night", "for a candlelit dinner")),
    "angry": Mood((0.8, 1.0), (0.0, 0.4), ("angry", "aggressive", "furious"),
                  ("to blow off steam", "for a rage session")),
}
# fmt: on

# Extra spellings of genre names, used only for genres the catalog has.
GENRE_ALIASES: dict[str, tuple[str, ...]] = {
    "hip hop": ("hiphop", "hip-hop", "rap"),
    "r&b": ("rnb", "r and b", "rhythm and blues"),
    "electronic": ("electronica", "edm", "electro"),
    "classical": ("orchestral",),
    "metal": ("heavy metal",),
}

# Recall over precision: genre and named artists decide, mood and era only lean, so a candidate
# list mixes fitting tracks with near misses and the model reading it still has to choose well.
WEIGHTS = {"popularity": 1.0, "genre": 3.0, "subgenre": 2.0, "artist": 3.0, "mood": 0.35, "era": 0.5}

NEGATIONS = ("no", "not", "without", "except", "avoid", "skip", "minus", "nothing by", "less of", "no more")
ERA_OLDER = ("older", "old school", "classic", "vintage")
ERA_NEWER = ("newer", "recent", "latest", "modern", "new")
FIRST_YEAR, LAST_YEAR = 1960, 2025
_DECADE_WORDS = {"sixties": 1960, "seventies": 1970, "eighties": 1980, "nineties": 1990, "noughties": 2000}
_DECADE = re.compile(r"\b(?:(19|20)([0-9])0s|([0-9])0s)\b")
_LENGTH = re.compile(r"\b(\d{1,2})\s*(?:songs?|tracks?)\b")


def _alternation(phrases: Sequence[str]) -> str:
    return "|".join(re.escape(p) for p in sorted(set(phrases), key=lambda p: (-len(p), p)))


def decade_range(decade: int) -> tuple[int, int]:
    """The years of a decade up to the catalog's last year, e.g. ``1990 -> (1990, 1999)``."""
    return decade, min(decade + 9, LAST_YEAR)


def shift_era(era: tuple[int, int] | None, direction: str) -> tuple[int, int] | None:
    """Move an era ``"older"`` or ``"newer"`` by about twenty years (from the whole catalog when None).

    Returns None when there is nothing older or newer left.
    """
    if direction == "older":
        lo, hi = (FIRST_YEAR, 1989) if era is None else (max(FIRST_YEAR, era[0] - 20), era[0] - 1)
    else:
        lo, hi = (2010, LAST_YEAR) if era is None else (era[1] + 1, min(LAST_YEAR, era[1] + 20))
    return (lo, hi) if lo <= hi else None


def _decade_of(m: re.Match[str]) -> int:
    if m[1]:
        return int(m[1] + m[2] + "0")
    digit = int(m[3])
    return 2000 + digit * 10 if digit <= 2 else 1900 + digit * 10


@dataclass
class Query:
    """What a request asks for, as parsed from its words."""

    genres: list[str] = field(default_factory=list)
    subgenres: list[str] = field(default_factory=list)
    mood: str | None = None
    era: tuple[int, int] | None = None
    artists: list[str] = field(default_factory=list)
    avoid_artists: list[str] = field(default_factory=list)
    length: int | None = None


@dataclass(frozen=True)
class _Coded:
    """A string column as integer codes, because membership tests on numpy strings are slow."""

    codes: np.ndarray
    index: dict[str, int]

    @classmethod
    def of(cls, values: np.ndarray) -> _Coded:
        codes, uniques = pd.factorize(values)
        return cls(codes, {str(u): i for i, u in enumerate(uniques)})

    def isin(self, values: Sequence[str]) -> np.ndarray:
        return np.isin(self.codes, [self.index[v] for v in values if v in self.index])


class Retriever:
    """Scores every catalog track against a parsed request; fast enough to run per request at inference."""

    def __init__(self, catalog: pd.DataFrame, max_per_artist: int = 3) -> None:
        self.track_ids = catalog["track_id"].astype(str).to_numpy()
        self.max_per_artist = max_per_artist
        self._artist = catalog["artist"].astype(str).to_numpy()
        self._genre = catalog["genre"].fillna("").astype(str).to_numpy()
        self._subgenre = catalog["subgenre"].fillna("").astype(str).to_numpy()
        self._energy = _column(catalog, "energy", np.nan)
        self._valence = _column(catalog, "valence", np.nan)
        self._year = _column(catalog, "year", np.nan)
        self._prior = np.nan_to_num(_column(catalog, "popularity", 0.0)) / 100.0
        self._artist_coded = _Coded.of(self._artist)
        self._genre_coded = _Coded.of(self._genre)
        self._subgenre_coded = _Coded.of(self._subgenre)
        self._id_rank = np.argsort(np.argsort(self.track_ids, kind="stable"), kind="stable")

        self._artists = {normalise(a): a for a in sorted(set(self._artist)) if normalise(a)}
        self._subgenres = {normalise(s): s for s in sorted(set(self._subgenre)) if normalise(s)}
        genres = sorted(set(self._genre) - {""})
        self._genres = {normalise(g): g for g in genres}
        for g in genres:
            self._genres.update({normalise(a): g for a in GENRE_ALIASES.get(g, ())})
        self._sub_parent = dict(zip(self._subgenre, self._genre, strict=True))
        self._moods = {normalise(p): name for name, m in MOODS.items() for p in (*m.words, *m.occasions)}

        neg = _alternation(NEGATIONS)
        names = _alternation(list(self._artists)) or "(?!)"  # "(?!)" never matches: a catalog without artists
        self._artist_re = re.compile(rf"(?:\b(?P<neg>{neg})\s+)?\b(?P<name>{names})\b")
        self._sub_re = (
            re.compile(rf"\b(?:{_alternation(list(self._subgenres))})\b") if self._subgenres else None
        )
        self._genre_re = re.compile(rf"\b(?:{_alternation(list(self._genres))})\b") if self._genres else None
        self._mood_re = re.compile(rf"\b(?:{_alternation(list(self._moods))})\b")
        era_words = [*_DECADE_WORDS, *ERA_OLDER, *ERA_NEWER]
        self._era_re = re.compile(rf"{_DECADE.pattern}|\b(?P<word>{_alternation(era_words)})\b")

    def parse(self, request: str, history: Sequence[str] = ()) -> Query:
        """Parse a request read after the earlier requests of its conversation.

        Genres and artists of every request count; for mood and era the latest mention wins, so a
        follow-up ("more upbeat", "older stuff") overrides or shifts what came before.
        """
        text = " ".join(normalise(t) for t in (*history, request))
        q = Query()
        m_len = _LENGTH.search(normalise(request))
        q.length = int(m_len[1]) if m_len else None
        # Artists first, and cut out, so a word in a name is never read as a genre or mood.
        for m in self._artist_re.finditer(text):
            name = self._artists[m["name"]]
            (q.avoid_artists if m["neg"] else q.artists).append(name)
        text = self._artist_re.sub(" ", text)
        if self._sub_re:
            q.subgenres = [self._subgenres[s] for s in self._sub_re.findall(text)]
            text = self._sub_re.sub(" ", text)
        if self._genre_re:
            q.genres = [self._genres[g] for g in self._genre_re.findall(text)]
        # The last mood and era mentioned win: a follow-up ("more upbeat") overrides the first request.
        moods = self._mood_re.findall(text)
        q.mood = self._moods[moods[-1]] if moods else None
        for m in self._era_re.finditer(text):
            word = m["word"]
            if word is None:
                q.era = decade_range(_decade_of(m))
            elif word in _DECADE_WORDS:
                q.era = decade_range(_DECADE_WORDS[word])
            else:
                q.era = shift_era(q.era, "older" if word in ERA_OLDER else "newer") or q.era
        q.artists = [a for a in dict.fromkeys(q.artists) if a not in q.avoid_artists]
        q.avoid_artists = list(dict.fromkeys(q.avoid_artists))
        return q

    def scores(self, query: Query) -> np.ndarray:
        """Relevance of every catalog track to ``query`` (``-inf`` for excluded artists)."""
        score = WEIGHTS["popularity"] * self._prior
        if query.genres:
            score = score + WEIGHTS["genre"] * self._genre_coded.isin(query.genres)
        if query.subgenres:
            parents = [self._sub_parent[s] for s in query.subgenres]
            score = score + WEIGHTS["subgenre"] * self._subgenre_coded.isin(query.subgenres)
            if not query.genres:
                score = score + WEIGHTS["genre"] * self._genre_coded.isin(parents)
        if query.mood:
            mood = MOODS[query.mood]
            if mood.energy:
                score = score + WEIGHTS["mood"] * closeness(self._energy, mood.energy, 0.25)
            if mood.valence:
                score = score + WEIGHTS["mood"] * closeness(self._valence, mood.valence, 0.25)
        if query.era:
            score = score + WEIGHTS["era"] * closeness(self._year, query.era, 10.0)
        if query.artists:
            score = score + WEIGHTS["artist"] * self._artist_coded.isin(query.artists)
        if query.avoid_artists:
            score = np.where(self._artist_coded.isin(query.avoid_artists), -np.inf, score)
        return score

    def retrieve(self, request: str, k: int = 20, history: Sequence[str] = ()) -> list[str]:
        """The ids of the ``k`` best tracks for ``request``, best first, at most ``max_per_artist`` per artist."""
        score = self.scores(self.parse(request, history))
        # Sorting only a shortlist keeps large catalogs fast; the full sort is the rare fallback
        # when the per-artist cap leaves the shortlist short.
        shortlist = max(8 * k, 64)
        if shortlist < len(score):
            cut = np.partition(score, len(score) - shortlist)[len(score) - shortlist]
            chosen = self._pick(np.flatnonzero(score >= cut), score, k)
            if len(chosen) == k:
                return chosen
        return self._pick(np.arange(len(score)), score, k)

    def _pick(self, rows: np.ndarray, score: np.ndarray, k: int) -> list[str]:
        # Ties go to the smaller track id, so the same request always gets the same list.
        order = rows[np.lexsort((self._id_rank[rows], -score[rows]))]
        chosen: list[str] = []
        per_artist: dict[str, int] = {}
        for i in order:
            if len(chosen) == k or score[i] == -np.inf:
                break
            artist = self._artist[i]
            if per_artist.get(artist, 0) < self.max_per_artist:
                per_artist[artist] = per_artist.get(artist, 0) + 1
                chosen.append(str(self.track_ids[i]))
        return chosen


def closeness(values: np.ndarray, target: tuple[float, float], scale: float) -> np.ndarray:
    """1 inside ``target``, falling linearly to 0 at ``scale`` outside it (0 for missing values)."""
    lo, hi = target
    dist = np.maximum(np.maximum(lo - values, values - hi), 0.0)
    return np.nan_to_num(np.clip(1.0 - dist / scale, 0.0, 1.0))


def _column(df: pd.DataFrame, name: str, default: float) -> np.ndarray:
    if name not in df:
        return np.full(len(df), default, dtype=float)
    return pd.to_numeric(df[name], errors="coerce").to_numpy(dtype=float)


def load_catalog(path: str | Path) -> pd.DataFrame:
    """Read a catalog from JSON Lines or Parquet: one file, or a directory of part files."""
    path = Path(path)
    files = (
        sorted(p for p in path.iterdir() if not p.name.startswith((".", "_"))) if path.is_dir() else [path]
    )
    parquet = [p for p in files if p.suffix == ".parquet"]
    if parquet:
        return pd.concat([pd.read_parquet(p) for p in parquet], ignore_index=True)
    jsonl = [p for p in files if p.suffix in (".jsonl", ".json")]
    if not jsonl:
        raise FileNotFoundError(f"no .jsonl, .json or .parquet catalog files at {path}")
    frames = [pd.read_json(p, lines=True, dtype={"track_id": str}) for p in jsonl]
    return pd.concat(frames, ignore_index=True)

"""Open-generation grounding: does each claimed ``artist - title`` name a real catalog track, and how loosely?

Example (catalog: ``t1 The Beatles - Here Comes the Sun``, ``t2 Daft Punk - Get Lucky``)::

    c0 | The Beatles - Here Comes the Sun               -> t1  exact
    c0 | the beatles - Here Comes The Sun (2019 Mix)    -> t1  normalised (case, version suffix)
    c0 | Daft Punk feat. Pharrell - Get Lucky           -> t2  normalised (featured artist dropped)
    c0 | Daft Punk - Get Lucki                          -> t2  fuzzy (title similarity 0.95)
    c0 | Daft Punk - One More Time                      -> none: hallucinated

    grounded_exact = 1/5, grounded_normalised = 3/5, grounded_fuzzy = 4/5, hallucination_rate = 1/5

Scoring rule: each parsed line gets the strictest level at which it matches a catalog track: ``exact``
(artist and title equal after stripping surrounding spaces), ``normalised`` (equal after
:func:`canonical_artist` / :func:`canonical_title`: case, accents, punctuation, featured artists and
remaster/live/version/mix suffixes removed; the artist may also match the catalog's first credited artist),
or ``fuzzy`` (same canonical artist, or one whose similarity is at least ``artist_cutoff``, and a title
similarity of at least ``title_cutoff``). The rates are cumulative (a line grounded exactly is also
grounded normalised and fuzzily). ``hallucination_rate`` is the fraction of parsed lines that match at no
level. Lines that do not parse are not track claims: format validity counts them, not this task. Every
rate is None for a completion without a parsed line. Similarity is rapidfuzz's normalised Indel
similarity when rapidfuzz is installed, else difflib's ratio (the same quantity, slower).
"""

from __future__ import annotations

import difflib
import re
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from playlist.prompts import Track, normalise

try:  # rapidfuzz is optional: difflib computes the same ratio, only slower
    from rapidfuzz import fuzz as _fuzz
    from rapidfuzz import process as _process
except ImportError:  # pragma: no cover - depends on the environment
    _fuzz = None
    _process = None

LEVELS = ("exact", "normalised", "fuzzy")

# "feat. X", "ft X", "featuring X", "(with X)" and everything after them; a bare "with" stays
# ("Dancing with Myself").
_FEAT = re.compile(
    r"\s*(?:[\(\[]\s*(?:feat|ft|featuring|with)|\b(?:feat|ft|featuring))\b\.?\s.*$", re.IGNORECASE
)
# A bracketed or dash-separated suffix that names a version of the same recording.
_VERSION_WORDS = r"remaster(?:ed)?|remix|mix|live|version|edit|mono|stereo|deluxe|acoustic|demo|single|explicit|clean|bonus"
_VERSION_BRACKET = re.compile(rf"\s*[\(\[][^\)\]]*\b(?:{_VERSION_WORDS})\b[^\)\]]*[\)\]]", re.IGNORECASE)
_VERSION_DASH = re.compile(rf"\s+-\s+[^-]*\b(?:{_VERSION_WORDS})\b[^-]*$", re.IGNORECASE)
_ARTIST_SPLIT = re.compile(r"\s*[,;/]\s*")  # "&" stays: "Simon & Garfunkel" is one act


def canonical_title(title: str) -> str:
    """``title`` without featured artists and version suffixes, then :func:`playlist.prompts.normalise`d.

    ``"Here Comes the Sun - Remastered 2009"`` and ``"Here Comes The Sun (2019 Mix)"`` both give
    ``"here comes the sun"``.
    """
    text = _VERSION_BRACKET.sub("", title)
    text = _VERSION_DASH.sub("", text)
    text = _FEAT.sub("", text)
    return normalise(text) or normalise(title)


def canonical_artist(artist: str) -> str:
    """``artist`` without featured artists, normalised: ``"Daft Punk feat. Pharrell"`` -> ``"daft punk"``."""
    return normalise(_FEAT.sub("", artist)) or normalise(artist)


def first_artist(artist: str) -> str:
    """The first credited artist, canonical: ``"Mark Ronson, Bruno Mars"`` -> ``"mark ronson"``."""
    return canonical_artist(_ARTIST_SPLIT.split(_FEAT.sub("", artist), maxsplit=1)[0])


def similarity(a: str, b: str) -> float:
    """Normalised Indel similarity of two strings in [0, 1] (difflib's ratio)."""
    if _fuzz is not None:
        return float(_fuzz.ratio(a, b)) / 100.0
    return difflib.SequenceMatcher(None, a, b, autojunk=False).ratio()


def best_match(query: str, choices: Sequence[str], cutoff: float) -> str | None:
    """The choice most similar to ``query`` with similarity at least ``cutoff`` (first on ties), or None."""
    if not choices:
        return None
    if _process is not None:
        found = _process.extractOne(query, choices, scorer=_fuzz.ratio, score_cutoff=cutoff * 100.0)
        return None if found is None else str(found[0])
    best, best_score = None, cutoff
    for choice in difflib.get_close_matches(query, choices, n=3, cutoff=cutoff):
        score = similarity(query, choice)
        if best is None or score > best_score:
            best, best_score = choice, score
    return best


@dataclass(frozen=True)
class Match:
    """The catalog track a line names and the strictest level at which it matched (None: hallucinated)."""

    track_id: str | None
    level: str | None


class OpenMatcher:
    """Matches claimed (artist, title) pairs against a catalog at three levels of strictness.

    Args:
        tracks: the catalog tracks.
        artist_cutoff: the least artist similarity for a fuzzy match when the canonical artists differ.
        title_cutoff: the least title similarity for a fuzzy match.
    """

    def __init__(
        self, tracks: Iterable[Track], artist_cutoff: float = 0.9, title_cutoff: float = 0.85
    ) -> None:
        self.artist_cutoff, self.title_cutoff = artist_cutoff, title_cutoff
        self._exact: dict[tuple[str, str], str] = {}
        self._canonical: dict[tuple[str, str], str] = {}
        self._titles: dict[str, dict[str, str]] = defaultdict(dict)  # canonical artist -> title -> id
        for t in tracks:
            self._exact.setdefault((t.artist.strip(), t.title.strip()), t.track_id)
            title = canonical_title(t.title)
            for artist in dict.fromkeys((canonical_artist(t.artist), first_artist(t.artist))):
                self._canonical.setdefault((artist, title), t.track_id)
                self._titles[artist].setdefault(title, t.track_id)
        self._artists = sorted(self._titles)

    def match(self, artist: str, title: str) -> Match:
        """The catalog track named by ``artist`` and ``title``, at the strictest level that matches."""
        found = self._exact.get((artist.strip(), title.strip()))
        if found is not None:
            return Match(found, "exact")
        key_title = canonical_title(title)
        artists = list(dict.fromkeys((canonical_artist(artist), first_artist(artist))))
        for key_artist in artists:
            found = self._canonical.get((key_artist, key_title))
            if found is not None:
                return Match(found, "normalised")
        known = [a for a in artists if a in self._titles]
        if not known:
            close = best_match(artists[0], self._artists, self.artist_cutoff)
            known = [] if close is None else [close]
        for key_artist in known:
            titles = self._titles[key_artist]
            close = best_match(key_title, list(titles), self.title_cutoff)
            if close is not None:
                return Match(titles[close], "fuzzy")
        return Match(None, None)


def open_grounding_scores(levels: Sequence[str | None]) -> dict[str, float | None]:
    """Cumulative grounding rates and the hallucination rate of one completion's parsed lines.

    Args:
        levels: per parsed line, ``"exact"``, ``"normalised"``, ``"fuzzy"`` or None (no match).

    Returns:
        ``grounded_exact``, ``grounded_normalised``, ``grounded_fuzzy`` and ``hallucination_rate``,
        each None when there is no parsed line.

    Raises:
        ValueError: an unknown level.
    """
    unknown = {lv for lv in levels if lv is not None and lv not in LEVELS}
    if unknown:
        raise ValueError(f"unknown match levels: {sorted(unknown)}")
    n = len(levels)
    if n == 0:
        return dict.fromkeys(
            ("grounded_exact", "grounded_normalised", "grounded_fuzzy", "hallucination_rate")
        )
    exact = sum(lv == "exact" for lv in levels)
    normalised = exact + sum(lv == "normalised" for lv in levels)
    fuzzy = normalised + sum(lv == "fuzzy" for lv in levels)
    return {
        "grounded_exact": exact / n,
        "grounded_normalised": normalised / n,
        "grounded_fuzzy": fuzzy / n,
        "hallucination_rate": 1.0 - fuzzy / n,
    }

"""Fulfilment: does the playlist satisfy the hidden intent behind the request?

Example: intent ``{"genre": "folk", "energy": [0.0, 0.45], "valence": null, "era": [1990, 2009],
"length": 4, "avoid_artists": ["Coldplay"]}`` and a playlist of 2 lines::

    t1  folk / indie folk, energy 0.30, 1995, Nick Drake   genre ✓ energy ✓ era ✓ avoid ✓
    ungrounded line                                        genre ✗ energy ✗ era ✗ avoid ✗

    genre 1/2, energy 1/2, era 1/2, avoid_artists 1/2, length 1 − |2 − 4| / 4 = 0.5  (valence: n/a)
    fulfillment = mean(0.5, 0.5, 0.5, 0.5, 0.5) = 0.5

Scoring rule: for each applicable constraint (null, or an empty avoid list, does not apply), the fraction
of playlist lines whose grounded track satisfies it; ungrounded lines and tracks missing the attribute
fail. Genre matches the track's genre or subgenre, case-insensitively; energy, valence and era (year)
ranges are inclusive; an artist passes when its normalised name is not in the normalised avoid list.
Length scores ``1 − |n − length| / length`` clipped to [0, 1], n counting the parsed lines. The request's
fulfilment is the mean over its applicable constraints (None when none applies).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from playlist.prompts import normalise

CONSTRAINTS = ("genre", "energy", "valence", "era", "length", "avoid_artists")

TrackRecord = Mapping[str, Any]


def parse_intent(intent: str | Mapping[str, Any] | None) -> dict[str, Any] | None:
    """The intent as a dict (from its JSON string), or None when the row has none."""
    if intent is None or (isinstance(intent, str) and not intent.strip()):
        return None
    return dict(json.loads(intent)) if isinstance(intent, str) else dict(intent)


def _in_range(value: Any, bounds: Sequence[float]) -> bool:
    return value is not None and bounds[0] <= value <= bounds[1]


def _fraction(tracks: Sequence[TrackRecord | None], ok: Callable[[TrackRecord], bool]) -> float:
    if not tracks:
        return 0.0
    return sum(t is not None and ok(t) for t in tracks) / len(tracks)


def genre_score(tracks: Sequence[TrackRecord | None], genre: str) -> float:
    """Fraction of lines whose track's genre or subgenre equals ``genre`` (case-insensitive)."""
    want = genre.strip().casefold()
    return _fraction(
        tracks, lambda t: want in {str(t.get(k) or "").strip().casefold() for k in ("genre", "subgenre")}
    )


def range_score(tracks: Sequence[TrackRecord | None], column: str, bounds: Sequence[float]) -> float:
    """Fraction of lines whose track's ``column`` lies in the inclusive range ``bounds``."""
    return _fraction(tracks, lambda t: _in_range(t.get(column), bounds))


def avoid_score(tracks: Sequence[TrackRecord | None], avoid_artists: Sequence[str]) -> float:
    """Fraction of lines whose track's artist is not one to avoid (normalised names)."""
    avoid = {normalise(a) for a in avoid_artists}
    return _fraction(tracks, lambda t: normalise(str(t.get("artist") or "")) not in avoid)


def length_score(n: int, length: int) -> float:
    """``1 − |n − length| / length`` clipped to [0, 1]."""
    return min(1.0, max(0.0, 1.0 - abs(n - length) / length))


def constraint_scores(tracks: Sequence[TrackRecord | None], intent: Mapping[str, Any]) -> dict[str, float]:
    """Score a playlist against each applicable constraint of an intent.

    Args:
        tracks: per parsed playlist line, the grounded track's catalog record, or None when ungrounded.
        intent: the parsed intent (see :func:`parse_intent`).

    Returns:
        ``{constraint: score}`` for the constraints that apply, each in [0, 1].
    """
    scores: dict[str, float] = {}
    if intent.get("genre"):
        scores["genre"] = genre_score(tracks, intent["genre"])
    for key, column in (("energy", "energy"), ("valence", "valence"), ("era", "year")):
        if intent.get(key) is not None:
            scores[key] = range_score(tracks, column, intent[key])
    if intent.get("length"):
        scores["length"] = length_score(len(tracks), int(intent["length"]))
    if intent.get("avoid_artists"):
        scores["avoid_artists"] = avoid_score(tracks, intent["avoid_artists"])
    return scores


def fulfillment(scores: Mapping[str, float]) -> float | None:
    """The request's fulfilment: the mean over its applicable constraints, None when none applies."""
    return sum(scores.values()) / len(scores) if scores else None

"""Diversity: does a playlist spread over artists, or collapse onto a few?

Example (4 lines)::

    Nick Drake - Pink Moon
    nick drake - River Man        (same artist, normalised)
    Low - Sunflower
    Nick Drake - Hazey Jane

    distinct_artists = 2, repeated_artists = 2 (lines whose artist already appeared),
    distinct_artist_ratio = 2/4 = 0.5, max_artist_share = 3/4 = 0.75

Scoring rule: artists are the names the playlist shows (parsed lines, grounded or not), compared after
:func:`playlist.prompts.normalise`. ``distinct_artists`` counts them, ``repeated_artists`` counts the lines
whose artist appeared on an earlier line (``n − distinct``), ``distinct_artist_ratio`` is
``distinct / n`` and ``max_artist_share`` the share of lines by the most frequent artist. A playlist
without a parsed line scores None on all four.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from playlist.prompts import normalise

NAMES = ("distinct_artists", "repeated_artists", "distinct_artist_ratio", "max_artist_share")


def diversity_scores(artists: Sequence[str]) -> dict[str, float | None]:
    """Artist diversity of one playlist.

    Args:
        artists: the artist of each parsed line, in order.

    Returns:
        ``distinct_artists``, ``repeated_artists``, ``distinct_artist_ratio``, ``max_artist_share``
        (None for each when ``artists`` is empty).
    """
    if not artists:
        return dict.fromkeys(NAMES)
    counts = Counter(normalise(a) for a in artists)
    n, distinct = len(artists), len(counts)
    return {
        "distinct_artists": float(distinct),
        "repeated_artists": float(n - distinct),
        "distinct_artist_ratio": distinct / n,
        "max_artist_share": max(counts.values()) / n,
    }

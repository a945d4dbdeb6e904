"""Popularity bias: does the model recommend only the hits, and how much of the catalog does it ever use?

Example (catalog of 10 tracks with popularity 0-100; two playlists)::

    playlist 1: t1 (pop 90), t2 (pop 70), an ungrounded line     mean_popularity = 80
    playlist 2: t1 (pop 90), t3 (popularity unknown)             mean_popularity = 90

    mean_popularity (macro) = (80 + 90) / 2 = 85
    catalog_coverage = |{t1, t2, t3}| / 10 = 0.3

Scoring rule: ``mean_popularity`` is, per playlist, the mean catalog popularity (the catalog's own
scale, 0-100 for Spotify-style data) of its grounded tracks with a known popularity (None when there is
none), then averaged over playlists. ``catalog_coverage`` is a corpus-level rate: the distinct grounded
track ids over all playlists divided by the catalog's size. Lower mean popularity at equal fulfilment
means a less popularity-biased model; higher coverage, a model that uses more of the long tail.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence


def _known(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and not math.isnan(value)


def mean_popularity(track_ids: Sequence[str | None], popularity: Mapping[str, float | None]) -> float | None:
    """The mean popularity of a playlist's grounded tracks whose popularity is known, or None."""
    known = [popularity.get(tid) for tid in track_ids if tid is not None]
    values = [float(p) for p in known if p is not None and _known(p)]
    return sum(values) / len(values) if values else None


def catalog_coverage(playlists: Iterable[Sequence[str | None]], catalog_size: int) -> float:
    """Distinct grounded track ids over every playlist, as a fraction of ``catalog_size``.

    Raises:
        ValueError: ``catalog_size`` is not positive.
    """
    if catalog_size <= 0:
        raise ValueError(f"catalog_size must be positive, got {catalog_size}")
    used = {tid for playlist in playlists for tid in playlist if tid is not None}
    return len(used) / catalog_size

"""Ground a generated playlist in the catalog: parse its lines and resolve each to a track id.

Example::

    >>> tracks = catalog_tracks(catalog_df)            # {"t1": Track("t1", "Nick Drake", "Pink Moon", ...)}
    >>> index = catalog_key_index(list(tracks.values()))
    >>> ground_completion("c1 | Nick Drake - Pink Moon\\nnot a track", ["t1"], tracks, index).track_ids
    ['t1']
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from playlist.prompts import ParsedTrack, Track, catalog_key_index, parse_playlist, resolve

__all__ = ["GroundedPlaylist", "catalog_key_index", "catalog_records", "catalog_tracks", "ground_completion"]


@dataclass
class GroundedPlaylist:
    """A parsed completion with the catalog track each line refers to.

    Attributes:
        lines: the answer lines that parse as ``cid | artist - title``, in order.
        track_ids: per entry of ``lines``, the resolved catalog track id, or None when ungrounded.
        bad_lines: lines that do not parse (they count as ungrounded answer lines).
        candidate_ids: the row's candidate track ids, in prompt order.
    """

    lines: list[ParsedTrack] = field(default_factory=list)
    track_ids: list[str | None] = field(default_factory=list)
    bad_lines: list[str] = field(default_factory=list)
    candidate_ids: list[str] = field(default_factory=list)

    @property
    def n_answer_lines(self) -> int:
        """Every non-empty line of the completion, parsed or not."""
        return len(self.lines) + len(self.bad_lines)

    @property
    def grounded(self) -> list[bool]:
        """Per parsed line, whether it resolved to a catalog track."""
        return [tid is not None for tid in self.track_ids]


def _optional(value: Any, cast: type) -> Any:
    # Parquet nulls arrive as None, NaN or pd.NA depending on the column's dtype.
    if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        return None
    return cast(value)


def catalog_tracks(catalog_df: pd.DataFrame) -> dict[str, Track]:
    """The catalog as prompt tracks keyed by track id (the attributes the prompt shows).

    Args:
        catalog_df: the catalog with at least ``track_id, artist, title``; ``genre, year, energy`` when known.

    Returns:
        ``{track_id: Track}`` in catalog order.
    """
    tracks: dict[str, Track] = {}
    for rec in catalog_df.to_dict("records"):
        tracks[str(rec["track_id"])] = Track(
            track_id=str(rec["track_id"]),
            artist=str(rec["artist"]),
            title=str(rec["title"]),
            genre=_optional(rec.get("genre"), str) or "",
            year=_optional(rec.get("year"), int),
            energy=_optional(rec.get("energy"), float),
            valence=_optional(rec.get("valence"), float),
        )
    return tracks


def catalog_records(catalog_df: pd.DataFrame) -> dict[str, dict[str, Any]]:
    """The full catalog rows keyed by track id, with nulls as None (for intent fulfilment)."""
    records: dict[str, dict[str, Any]] = {}
    for rec in catalog_df.to_dict("records"):
        records[str(rec["track_id"])] = {
            k: None if v is pd.NA or (isinstance(v, float) and math.isnan(v)) else v for k, v in rec.items()
        }
    return records


def ground_completion(
    completion: str,
    candidate_ids: Sequence[str],
    tracks: dict[str, Track],
    catalog_index: dict[tuple[str, str], str] | None,
) -> GroundedPlaylist:
    """Parse a completion and resolve each line to a catalog track id.

    A line is grounded by its candidate id when that candidate exists and its artist matches,
    otherwise by an exact normalised (artist, title) match in the catalog (see ``playlist.prompts.resolve``).

    Args:
        completion: the generated answer text.
        candidate_ids: the row's candidate track ids, in the order the prompt showed them.
        tracks: the catalog from :func:`catalog_tracks`.
        catalog_index: from ``catalog_key_index``; None grounds by candidate id only.

    Returns:
        The parsed lines with their resolved track ids.

    Raises:
        KeyError: a candidate id is not in the catalog (the prompt could not have shown it).
    """
    missing = [tid for tid in candidate_ids if tid not in tracks]
    if missing:
        raise KeyError(f"candidate track ids not in the catalog: {missing[:5]}")
    candidates = [tracks[tid] for tid in candidate_ids]
    parsed = parse_playlist(completion)
    return GroundedPlaylist(
        lines=parsed.tracks,
        track_ids=[resolve(line, candidates, catalog_index) for line in parsed.tracks],
        bad_lines=parsed.bad_lines,
        candidate_ids=list(candidate_ids),
    )

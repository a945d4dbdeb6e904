"""Format validity: does the completion read as a playlist, one distinct track a line?

Example::

    completion                                   parses  duplicates  valid
    "c1 | Nick Drake - Pink Moon\\nc2 | Low - Sunflower"   yes     no          1.0
    "c1 | Nick Drake - Pink Moon\\nSure! Here you go"     no      no          0.0
    "c1 | Nick Drake - Pink Moon\\nc0 | nick drake - Pink Moon"  yes  yes      0.0

Scoring rule: a completion is valid (1.0) when it has at least one line, every line parses as
``cid | artist - title`` (``ParsedPlaylist.valid``), and no track appears twice. Two lines are the same
track when they share a candidate id other than ``c0`` or the same normalised (artist, title).
"""

from __future__ import annotations

from playlist.prompts import ParsedPlaylist, normalise


def has_duplicates(parsed: ParsedPlaylist) -> bool:
    """Whether two parsed lines name the same track (same non-``c0`` id or same normalised artist and title)."""
    seen: set[tuple[str, ...]] = set()
    for line in parsed.tracks:
        keys: list[tuple[str, ...]] = [("title", normalise(line.artist), normalise(line.title))]
        if line.cid != "c0":
            keys.append(("cid", line.cid))
        if any(k in seen for k in keys):
            return True
        seen.update(keys)
    return False


def format_scores(parsed: ParsedPlaylist) -> dict[str, float]:
    """Format scores of one completion.

    Returns:
        ``format_valid`` (1.0 when it parses and has no duplicates), ``format_parses`` (1.0 when every
        line parses), ``format_duplicates`` (1.0 when a track repeats), each 0.0 or 1.0.
    """
    duplicates = has_duplicates(parsed)
    return {
        "format_valid": float(parsed.valid and not duplicates),
        "format_parses": float(parsed.valid),
        "format_duplicates": float(duplicates),
    }

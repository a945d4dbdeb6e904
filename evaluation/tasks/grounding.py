"""Grounding: do the answer lines name real tracks, from the candidates or at least from the catalog?

Example (candidates ``c1 = t1 Nick Drake - Pink Moon``, ``c2 = t2 Low - Sunflower``)::

    c1 | Nick Drake - Pink Moon      -> t1 (by candidate id)         grounded, in candidates
    c2 | Nick Drake - Sunflower      -> wrong artist for c2, and not a catalog track: ungrounded
    c0 | Joni Mitchell - River       -> t9 (by catalog artist/title)  grounded, not in candidates
    I hope you like it!              -> does not parse: ungrounded

    grounded = 2/4 = 0.5, fully_grounded = 0.0, in_candidates = 1/4 = 0.25

Scoring rule: over every non-empty answer line (lines that do not parse count, as ungrounded),
``grounded`` is the fraction that resolve to a catalog track, ``in_candidates`` the fraction that resolve
to one of the row's candidates, and ``fully_grounded`` is 1.0 when there is at least one line and all
are grounded. An empty completion scores 0.0 on all three. ``in_candidates`` is None (not applicable)
when the row has no candidates (open generation).
"""

from __future__ import annotations

from collections.abc import Sequence


def grounding_scores(
    track_ids: Sequence[str | None], n_bad_lines: int, candidate_ids: Sequence[str]
) -> dict[str, float | None]:
    """Grounding scores of one completion.

    Args:
        track_ids: per parsed line, the resolved catalog track id or None.
        n_bad_lines: the number of lines that did not parse.
        candidate_ids: the row's candidate track ids (empty in open generation).

    Returns:
        ``grounded``, ``fully_grounded`` and ``in_candidates`` (None without candidates).
    """
    n_lines = len(track_ids) + n_bad_lines
    grounded = sum(tid is not None for tid in track_ids)
    candidates = set(candidate_ids)
    in_candidates = sum(tid is not None and tid in candidates for tid in track_ids)
    return {
        "grounded": grounded / n_lines if n_lines else 0.0,
        "fully_grounded": float(n_lines > 0 and grounded == n_lines),
        "in_candidates": (in_candidates / n_lines if n_lines else 0.0) if candidates else None,
    }

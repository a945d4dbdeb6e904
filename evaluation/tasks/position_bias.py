"""Position bias: does the answer just copy the candidate list in the order it is shown?

Example (candidates c1 … c6, a request for 3 songs)::

    c1, c2, c3   -> copies_order 1.0, mean_candidate_rank 2.0   (the list's head, in order)
    c1, c3, c2   -> copies_order 0.0, mean_candidate_rank 2.0   (the head, reordered: a choice)
    c4, c1, c6   -> copies_order 0.0, mean_candidate_rank 3.7

Scoring rule: ``copies_order`` is 1.0 when the answer's lines resolve, in order, to the first n candidates
(n the number of lines, at least 2: one line is too little to tell copying from choosing), else 0.0.
``mean_candidate_rank`` is the mean 1-based place in the shown list of the lines that resolve to a
candidate. Both are None without candidates or with fewer than two (copies_order) or no (rank) such lines.
Retrieval order scores copies_order 1.0 by construction; a model near it has learnt the shortcut.
"""

from __future__ import annotations

from collections.abc import Sequence


def position_scores(track_ids: Sequence[str | None], candidate_ids: Sequence[str]) -> dict[str, float | None]:
    """Position-bias scores of one completion.

    Args:
        track_ids: per parsed line, the resolved catalog track id or None.
        candidate_ids: the row's candidate track ids in the order the prompt showed them.

    Returns:
        ``copies_order`` and ``mean_candidate_rank`` (each None where it does not apply).
    """
    if not candidate_ids:
        return {"copies_order": None, "mean_candidate_rank": None}
    place = {tid: i + 1 for i, tid in reversed(list(enumerate(candidate_ids)))}
    ranks = [place[t] for t in track_ids if t is not None and t in place]
    copies = None
    if len(track_ids) >= 2:
        copies = float(list(track_ids) == list(candidate_ids[: len(track_ids)]))
    return {"copies_order": copies, "mean_candidate_rank": sum(ranks) / len(ranks) if ranks else None}

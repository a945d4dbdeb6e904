"""Position bias: the share of answers that copy the candidate list in the order shown."""

from __future__ import annotations

import pytest

from evaluation.tasks.position_bias import position_scores

CANDS = ["t1", "t2", "t3", "t4", "t5", "t6"]


@pytest.mark.parametrize(
    ("answer", "copies", "rank"),
    [
        (["t1", "t2", "t3"], 1.0, 2.0),  # the head of the list, in order
        (["t1", "t3", "t2"], 0.0, 2.0),  # the head, reordered: a choice
        (["t4", "t1", "t6"], 0.0, 11 / 3),
        (["t1", None], 0.0, 1.0),  # an ungrounded second line is not c2
        (["t1"], None, 1.0),  # one line cannot tell copying from choosing
        ([None, None], 0.0, None),
    ],
)
def test_copies_order_and_mean_rank(answer: list, copies: float | None, rank: float | None) -> None:
    got = position_scores(answer, CANDS)
    assert got["copies_order"] == copies
    assert (
        got["mean_candidate_rank"] == pytest.approx(rank)
        if rank is not None
        else got["mean_candidate_rank"] is None
    )


def test_not_applicable_without_candidates() -> None:
    assert position_scores(["t1", "t2"], []) == {"copies_order": None, "mean_candidate_rank": None}

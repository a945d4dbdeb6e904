"""Retrieval task: Hit@k, MRR@k, recall@k per turn with CPCD's seed filtering, macro over conversations."""

from __future__ import annotations

import pytest

from evaluation.tasks.goal_ranking import (
    conversation_scores,
    hit_at_k,
    last_scorable_turn,
    macro_average,
    mrr_at_k,
    recall_at_k,
    turn_scores,
)

GOAL = ["g1", "g2", "g3", "g4"]


def test_metrics_at_k() -> None:
    ranked = ["x", "g2", "g1", "y"]
    assert [hit_at_k(GOAL, ranked, k) for k in (1, 2, 5)] == [0.0, 1.0, 1.0]
    assert [mrr_at_k(GOAL, ranked, k) for k in (1, 2, 5)] == [0.0, 0.5, 0.5]
    assert [recall_at_k(GOAL, ranked, k) for k in (1, 2, 3)] == [0.0, 0.25, 0.5]


def test_short_ranking_counts_missing_positions_as_misses() -> None:
    scores = turn_scores(set(GOAL), ["x", "g3"], ks=(1, 20))
    assert scores == {
        "hit@1": 0.0,
        "mrr@1": 0.0,
        "recall@1": 0.0,
        "hit@20": 1.0,
        "mrr@20": 0.5,
        "recall@20": 0.25,
    }


def test_docstring_example_with_seed_filtering() -> None:
    scores = conversation_scores(
        [["x", "g2", "g1", "y"], ["g1", "y", "g3"]], GOAL, [["g1", "x"], []], ks=(1, 5)
    )
    assert scores == pytest.approx(
        {"hit@1": 0.0, "mrr@1": 0.0, "recall@1": 0.0, "hit@5": 1.0, "mrr@5": 0.5, "recall@5": 5 / 12}
    )


def test_only_first_three_likes_are_seeds() -> None:
    # g4 is the 4th like of turn 0, so it stays gold (and rankable) at turn 1.
    scores = conversation_scores([[], ["g4"]], GOAL, [["g1", "g2", "g3", "g4"], []], ks=(1,))
    assert scores == {"hit@1": 0.5, "mrr@1": 0.5, "recall@1": 0.5}  # turn 0: 0; turn 1: 1 of gold {g4}


def test_turn_without_gold_left_is_skipped() -> None:
    scores = conversation_scores([["g1"], ["g2"]], ["g1"], [["g1"], []], ks=(1,))
    assert scores == {"hit@1": 1.0, "mrr@1": 1.0, "recall@1": 1.0}  # turn 1 has no gold left
    assert conversation_scores([["g1"]], [], [[]], ks=(1,)) is None


def test_scoring_a_subsample_of_turns_keeps_earlier_seeds() -> None:
    liked = [["g1", "x"], [], ["g2", "g3", "g4"]]
    # Turn 1 alone: g1 and x were seeded at turn 0 and leave the ranking, so [y, g1, g2] hits g2 at rank 2.
    scores = conversation_scores([["g1"], ["y", "g1", "g2"], ["g9"]], GOAL, liked, ks=(1, 5), turns={1})
    assert scores == pytest.approx(
        {"hit@1": 0.0, "mrr@1": 0.0, "recall@1": 0.0, "hit@5": 1.0, "mrr@5": 0.5, "recall@5": 1 / 3}
    )
    assert last_scorable_turn(GOAL, liked) == 2
    assert last_scorable_turn(["g1"], [["g1"], [], []]) == 0  # nothing gold is left after turn 0
    assert last_scorable_turn([], [[]]) is None
    assert conversation_scores([["g1"]], GOAL, [[]], turns=set()) is None


def test_macro_average_weights_conversations_equally() -> None:
    a = conversation_scores([["g1"], ["g1"], ["g1"]], ["g1"], [[], [], []], ks=(1,))
    b = conversation_scores([["x"]], ["g1"], [[]], ks=(1,))
    assert macro_average([a, b, None]) == {
        "hit@1": 0.5,
        "mrr@1": 0.5,
        "recall@1": 0.5,
        "n_conversations": 2.0,
    }


def test_lengths_must_agree() -> None:
    with pytest.raises(ValueError):
        conversation_scores([["g1"]], GOAL, [[], []])

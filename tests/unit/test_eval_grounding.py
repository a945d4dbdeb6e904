"""Grounding task: grounded, fully grounded and in-candidate rates."""

from __future__ import annotations

import pytest

from evaluation.tasks.grounding import grounding_scores


def test_docstring_example():
    # c1 grounded in candidates, c2 ungrounded, c0 grounded in catalog only, one bad line.
    scores = grounding_scores(["t1", None, "t9"], n_bad_lines=1, candidate_ids=["t1", "t2"])
    assert scores == {"grounded": 0.5, "fully_grounded": 0.0, "in_candidates": 0.25}


def test_fully_grounded():
    scores = grounding_scores(["t1", "t2", "t9"], 0, ["t1", "t2", "t3"])
    assert scores == {"grounded": 1.0, "fully_grounded": 1.0, "in_candidates": pytest.approx(2 / 3)}


def test_bad_line_breaks_full_grounding():
    assert grounding_scores(["t1"], 1, ["t1"])["fully_grounded"] == 0.0


def test_empty_completion_scores_zero():
    assert grounding_scores([], 0, ["t1"]) == {"grounded": 0.0, "fully_grounded": 0.0, "in_candidates": 0.0}


def test_open_generation_has_no_candidate_rate():
    assert grounding_scores(["t1", None], 0, []) == {
        "grounded": 0.5,
        "fully_grounded": 0.0,
        "in_candidates": None,
    }

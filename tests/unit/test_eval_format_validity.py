"""Format validity task: parses as a playlist, no track twice."""

from __future__ import annotations

import pytest

from evaluation.tasks.format_validity import format_scores, has_duplicates
from playlist.prompts import parse_playlist


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("c1 | Nick Drake - Pink Moon\nc2 | Low - Sunflower", (1.0, 1.0, 0.0)),
        ("c0 | Nick Drake - Pink Moon", (1.0, 1.0, 0.0)),
        ("", (0.0, 0.0, 0.0)),
        ("Sure! Here you go.", (0.0, 0.0, 0.0)),
        ("c1 | Nick Drake - Pink Moon\nSure! Here you go.", (0.0, 0.0, 0.0)),
        ("c1 | Nick Drake - Pink Moon\nc1 | Nick Drake - Pink Moon", (0.0, 1.0, 1.0)),
        # The same track by artist and title, once by id and once as open generation.
        ("c1 | Nick Drake - Pink Moon\nc0 | nick drake - PINK MOON!", (0.0, 1.0, 1.0)),
        # The same candidate id claimed for two different tracks.
        ("c1 | Nick Drake - Pink Moon\nc1 | Low - Sunflower", (0.0, 1.0, 1.0)),
        # Unparseable and duplicated.
        ("c1 | Low - Sunflower\nc1 | Low - Sunflower\noops", (0.0, 0.0, 1.0)),
    ],
)
def test_format_scores(text, expected):
    scores = format_scores(parse_playlist(text))
    assert (scores["format_valid"], scores["format_parses"], scores["format_duplicates"]) == expected


def test_distinct_open_generation_lines_are_not_duplicates():
    assert not has_duplicates(parse_playlist("c0 | Nick Drake - Pink Moon\nc0 | Nick Drake - River Man"))

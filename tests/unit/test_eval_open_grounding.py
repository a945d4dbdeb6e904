"""Open-generation grounding: exact, normalised and fuzzy artist–title matching, hallucination rate."""

from __future__ import annotations

import pytest

from evaluation.tasks.open_grounding import (
    OpenMatcher,
    canonical_artist,
    canonical_title,
    first_artist,
    open_grounding_scores,
    similarity,
)
from playlist.prompts import Track

CATALOG = [
    Track("t1", "The Beatles", "Here Comes the Sun"),
    Track("t2", "Daft Punk", "Get Lucky"),
    Track("t3", "Mark Ronson, Bruno Mars", "Uptown Funk"),
    Track("t4", "Billy Idol", "Dancing with Myself"),
]


@pytest.fixture(scope="module")
def matcher() -> OpenMatcher:
    return OpenMatcher(CATALOG)


@pytest.mark.parametrize(
    ("title", "expected"),
    [
        ("Here Comes the Sun - Remastered 2009", "here comes the sun"),
        ("Here Comes The Sun (2019 Mix)", "here comes the sun"),
        ("Get Lucky (feat. Pharrell Williams)", "get lucky"),
        ("Uptown Funk (with Bruno Mars)", "uptown funk"),
        ("Dancing with Myself", "dancing with myself"),  # a bare "with" is part of the title
        ("Single Ladies (Put a Ring on It)", "single ladies put a ring on it"),
    ],
)
def test_canonical_title(title: str, expected: str) -> None:
    assert canonical_title(title) == expected


def test_canonical_and_first_artist() -> None:
    assert canonical_artist("Daft Punk feat. Pharrell") == "daft punk"
    assert canonical_artist("Beyoncé ft. JAY-Z") == "beyonce"
    assert first_artist("Mark Ronson, Bruno Mars") == "mark ronson"
    assert first_artist("Simon & Garfunkel") == "simon garfunkel"


def test_docstring_example(matcher: OpenMatcher) -> None:
    lines = [
        ("The Beatles", "Here Comes the Sun"),
        ("the beatles", "Here Comes The Sun (2019 Mix)"),
        ("Daft Punk feat. Pharrell", "Get Lucky"),
        ("Daft Punk", "Get Lucki"),
        ("Daft Punk", "One More Time"),
    ]
    matches = [matcher.match(a, t) for a, t in lines]
    assert [m.level for m in matches] == ["exact", "normalised", "normalised", "fuzzy", None]
    assert [m.track_id for m in matches] == ["t1", "t1", "t2", "t2", None]
    scores = open_grounding_scores([m.level for m in matches])
    assert scores == pytest.approx(
        {"grounded_exact": 0.2, "grounded_normalised": 0.6, "grounded_fuzzy": 0.8, "hallucination_rate": 0.2}
    )


def test_first_credited_artist_and_fuzzy_artist(matcher: OpenMatcher) -> None:
    assert matcher.match("Mark Ronson", "Uptown Funk") == matcher.match("Mark Ronson", "Uptown Funk!")
    assert matcher.match("Mark Ronson", "Uptown Funk").level == "normalised"
    # A misspelt artist still matches fuzzily when the title is right.
    assert matcher.match("Billy Idoll", "Dancing with Myself").track_id == "t4"
    assert matcher.match("Billy Idoll", "Dancing with Myself").level == "fuzzy"


def test_real_artist_with_invented_title_is_hallucinated(matcher: OpenMatcher) -> None:
    assert matcher.match("The Beatles", "Here Comes the Moon Tonight").level is None
    assert matcher.match("Nobody Known", "Get Lucky").level is None


def test_cutoffs_are_respected() -> None:
    strict = OpenMatcher(CATALOG, title_cutoff=0.99)
    assert strict.match("Daft Punk", "Get Lucki").level is None


def test_similarity_bounds() -> None:
    assert similarity("abc", "abc") == 1.0
    assert similarity("abc", "xyz") == 0.0
    assert similarity("get lucky", "get lucki") == pytest.approx(8 / 9)


def test_no_parsed_line_scores_none() -> None:
    assert set(open_grounding_scores([]).values()) == {None}


def test_unknown_level_is_an_error() -> None:
    with pytest.raises(ValueError, match="unknown"):
        open_grounding_scores(["close enough"])

"""GRPO's programmatic rewards: pure scores against prompts rendered by playlist.prompts, and TRL's batch shape."""

from __future__ import annotations

from functools import partial

import pytest

from encore.train.rewards import (
    distinct_artists_reward,
    format_reward,
    grounded_reward,
    length_reward,
    prompt_candidates,
    prompt_request,
    requested_length,
    score_distinct_artists,
    score_format,
    score_grounded,
    score_length,
)
from playlist.prompts import Track, catalog_key_index, render_playlist, render_prompt

CANDS = [
    Track("t1", "Nick Drake", "Pink Moon", "folk", 1972, 0.2),
    Track("t2", "Nick Drake", "River Man", "folk", 1969, 0.3),
    Track("t3", "Björk", "Jóga", "electronic", 1997, None),
    Track("t4", "Low", "Sunflower", "", None, None),  # no attributes: the rendered line ends in "| "
]
CATALOG = [*CANDS, Track("t9", "Joni Mitchell", "River")]
INDEX = catalog_key_index(CATALOG)
PROMPT = render_prompt("Mellow folk for a rainy evening, 3 songs", ["something calm"], CANDS)


def test_prompt_context_reads_back_what_render_prompt_wrote() -> None:
    assert prompt_request(PROMPT) == "Mellow folk for a rainy evening, 3 songs"
    cands = prompt_candidates(PROMPT)
    assert [(t.track_id, t.artist, t.title) for t in cands] == [
        ("c1", "Nick Drake", "Pink Moon"),
        ("c2", "Nick Drake", "River Man"),
        ("c3", "Björk", "Jóga"),
        ("c4", "Low", "Sunflower"),
    ]
    assert prompt_candidates(render_prompt("anything", [], [])) == []


@pytest.mark.parametrize(
    ("request_text", "expected"),
    [
        ("mellow folk, 8 songs", 8),
        ("late night jazz, about 10 tracks", 10),
        ("Upbeat run (12 Songs)", 12),
        ("road trip - 15 tracks", 15),
        ("songs for a run", None),
        ("the 90s", None),
        ("0 songs", None),
    ],
)
def test_requested_length(request_text: str, expected: int | None) -> None:
    assert requested_length(request_text) == expected


def test_scores_of_a_good_playlist() -> None:
    text = render_playlist([CANDS[0], CANDS[2], CANDS[3]], CANDS)  # three artists, all candidates
    assert score_format(text) == 1.0
    assert score_grounded(text, prompt_candidates(PROMPT), INDEX) == 1.0
    assert score_distinct_artists(text) == 1.0
    assert score_length(text, 3) == 1.0


def test_scores_of_the_docstring_examples() -> None:
    cands = prompt_candidates(PROMPT)
    repeated = "c1 | Nick Drake - Pink Moon\nc2 | Nick Drake - River Man"
    assert (score_format(repeated), score_grounded(repeated, cands, INDEX)) == (1.0, 1.0)
    assert score_distinct_artists(repeated) == 0.5
    assert score_length(repeated, 3) == pytest.approx(2 / 3)
    chatty = "c1 | Nick Drake - Pink Moon\nSure!"
    assert (score_format(chatty), score_grounded(chatty, cands, INDEX)) == (0.0, 0.5)
    assert score_distinct_artists(chatty) == 1.0
    assert score_length(chatty, 3) == pytest.approx(1 / 3)


def test_grounding_rejects_invented_titles_and_accepts_catalog_tracks() -> None:
    cands = prompt_candidates(PROMPT)
    assert score_grounded("c1 | Nick Drake - Made Up Song", cands, INDEX) == 0.0  # right id, invented title
    assert score_grounded("c0 | Joni Mitchell - River", cands, INDEX) == 1.0  # in the catalog
    assert score_grounded("c0 | Joni Mitchell - River", cands, None) == 0.0  # candidates only
    assert score_grounded("", cands, INDEX) == 0.0


def test_duplicate_tracks_fail_format_and_empty_answers_score_zero() -> None:
    assert score_format("c1 | Nick Drake - Pink Moon\nc1 | Nick Drake - Pink Moon") == 0.0
    assert score_format("") == 0.0
    assert score_distinct_artists("no playlist here") == 0.0
    assert score_length("", 5) == 0.0
    assert score_length("c1 | Nick Drake - Pink Moon", None) is None


def test_batch_wrappers_take_trl_conversational_completions() -> None:
    good = [{"role": "assistant", "content": render_playlist([CANDS[0], CANDS[2], CANDS[3]], CANDS)}]
    bad = [{"role": "assistant", "content": "I love music"}]
    no_length = render_prompt("mellow folk", [], CANDS)
    prompts, completions = [PROMPT, no_length], [good, bad]
    assert format_reward(prompts, completions) == [1.0, 0.0]
    assert partial(grounded_reward, catalog_index=INDEX)(prompts, completions, trainer_state=None) == [
        1.0,
        0.0,
    ]
    assert distinct_artists_reward(prompts, completions) == [1.0, 0.0]
    assert length_reward(prompts, completions) == [1.0, None]
    assert format_reward(["plain prompt"], ["c1 | Nick Drake - Pink Moon"]) == [1.0]

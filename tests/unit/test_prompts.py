"""The shared prompt/answer format: rendering, parsing and grounding rules."""

from __future__ import annotations

import pytest

from playlist.prompts import (
    PROMPT_FORMAT,
    ParsedTrack,
    PromptFormatError,
    Track,
    catalog_key_index,
    check_prompt_format,
    parse_playlist,
    render_playlist,
    render_prompt,
    resolve,
)

CANDS = [
    Track("t1", "Nick Drake", "Pink Moon", "folk", 1972, 0.2, 0.25),
    Track("t2", "Björk", "Jóga", "electronic", 1997, 0.5, 0.355),
]


def test_render_and_parse_round_trip() -> None:
    text = render_playlist([CANDS[1], CANDS[0]], CANDS)
    assert text == "c2 | Björk - Jóga\nc1 | Nick Drake - Pink Moon"
    parsed = parse_playlist(text)
    assert parsed.valid
    assert [resolve(t, CANDS) for t in parsed.tracks] == ["t2", "t1"]


def test_prompt_shows_request_history_and_candidates() -> None:
    system, user = render_prompt("more upbeat", ["mellow folk"], CANDS)
    assert system["role"] == "system" and user["role"] == "user"
    assert "Request: more upbeat" in user["content"]
    assert "- mellow folk" in user["content"]
    assert "c2 | Björk - Jóga | electronic, 1997, energy 0.50, valence 0.35" in user["content"]


def test_every_attribute_of_the_listeners_fit_is_on_the_line() -> None:
    # genre, era, energy and valence: what `intent_fit` and the fulfilment score read
    line = render_prompt("sad folk", [], CANDS[:1])[1]["content"].splitlines()[-1]
    assert line == "c1 | Nick Drake - Pink Moon | folk, 1972, energy 0.20, valence 0.25"


def test_another_prompt_format_is_refused_naming_where_it_came_from() -> None:
    check_prompt_format(PROMPT_FORMAT, "here")
    with pytest.raises(PromptFormatError, match=r"outputs/x/manifest.json was made with prompt format 1"):
        check_prompt_format(None, "outputs/x/manifest.json")  # recorded before versions: format 1


def test_bad_lines_make_the_answer_invalid() -> None:
    parsed = parse_playlist("c1 | Nick Drake - Pink Moon\nhere is your playlist!")
    assert not parsed.valid and parsed.bad_lines == ["here is your playlist!"]
    assert not parse_playlist("").valid


def test_grounding_needs_artist_and_title_of_the_candidate() -> None:
    assert resolve(ParsedTrack("c1", "nick drake", "PINK MOON"), CANDS) == "t1"  # normalised
    assert resolve(ParsedTrack("c1", "Nick Drake", "River Man"), CANDS) is None  # invented title
    assert resolve(ParsedTrack("c1", "Björk", "Jóga"), CANDS) is None  # wrong id, no catalog
    index = catalog_key_index(CANDS)
    assert resolve(ParsedTrack("c1", "Bjork", "Joga"), CANDS, index) == "t2"  # found in the catalog
    assert resolve(ParsedTrack("c9", "Nobody", "Nothing"), CANDS, index) is None

"""GRPO's programmatic rewards: pure scores of one completion against its prompt, and TRL's batch wrappers.

Each score reuses the one playlist format (`playlist.prompts`) and the eval tasks' scoring functions,
so RL optimises what evaluation measures. Example, for a prompt asking for "mellow folk, 3 songs"
with candidates ``c1 | Nick Drake - Pink Moon`` and ``c2 | Nick Drake - River Man``::

    completion                                               format  grounded  distinct_artists  length
    "c1 | Nick Drake - Pink Moon\\nc2 | Nick Drake - River Man"   1.0     1.0       0.5               1 - 1/3
    "c1 | Nick Drake - Pink Moon\\nSure!"                         0.0     0.5       1.0               1 - 2/3

The batch wrappers take TRL's `(prompts, completions, **kwargs)` and return one float per
completion (`None` from `length_reward` when the request names no length: TRL then leaves that
reward out for the completion instead of counting it as 0).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from evaluation.tasks.format_validity import format_scores
from evaluation.tasks.fulfillment import length_score
from evaluation.tasks.grounding import grounding_scores
from playlist.prompts import Track, normalise, parse_playlist, resolve

_LENGTH = re.compile(r"\b(\d{1,3})\s+(?:songs|tracks)\b", re.IGNORECASE)
_CANDIDATES = "Candidates:\n"

Messages = Sequence[dict[str, str]]


def completion_text(completion: str | Messages) -> str:
    """The answer text of a completion, plain or conversational (the last message's content)."""
    return completion if isinstance(completion, str) else completion[-1]["content"]


def _user_message(prompt: str | Messages) -> str:
    if isinstance(prompt, str):
        return prompt
    return next(m["content"] for m in reversed(prompt) if m["role"] == "user")


def prompt_request(prompt: str | Messages) -> str:
    """The user's request, as `playlist.prompts.render_user_message` wrote it (`Request: …`)."""
    first = _user_message(prompt).split("\n\n", 1)[0]
    return first.removeprefix("Request: ").strip()


def prompt_candidates(prompt: str | Messages) -> list[Track]:
    """The candidate tracks a prompt shows, as `Track(cid, artist, title)` (empty in open generation).

    Each rendered line is ``cN | artist - title | attributes``: without its attributes it is an
    answer line, so `parse_playlist` reads it.
    """
    text = _user_message(prompt)
    if _CANDIDATES not in text:
        return []
    lines = text.split(_CANDIDATES, 1)[1].splitlines()
    heads = "\n".join(line.rsplit("|", 1)[0] for line in lines if line.count("|") >= 2)
    return [Track(p.cid, p.artist, p.title) for p in parse_playlist(heads).tracks]


def requested_length(request: str) -> int | None:
    """The number of tracks a request asks for ("… 8 songs", "about 10 tracks"), or None."""
    match = _LENGTH.search(request)
    return int(match.group(1)) if match and int(match.group(1)) > 0 else None


def score_format(text: str) -> float:
    """1.0 when every line parses and no track repeats (`tasks/format_validity.py`), else 0.0."""
    return format_scores(parse_playlist(text))["format_valid"]


def score_grounded(
    text: str, candidates: Sequence[Track], catalog_index: dict[tuple[str, str], str] | None
) -> float:
    """Fraction of answer lines that name a candidate or a catalog track (`tasks/grounding.py`)."""
    parsed = parse_playlist(text)
    track_ids = [resolve(line, candidates, catalog_index) for line in parsed.tracks]
    grounded = grounding_scores(track_ids, len(parsed.bad_lines), [t.track_id for t in candidates])
    return float(grounded["grounded"] or 0.0)


def score_distinct_artists(text: str) -> float:
    """Fraction of parsed lines whose artist no earlier line named (1.0: no repeated artist; 0.0: no line)."""
    artists = [normalise(line.artist) for line in parse_playlist(text).tracks]
    return len(set(artists)) / len(artists) if artists else 0.0


def score_length(text: str, requested: int | None) -> float | None:
    """`1 − |n − requested| / requested` over parsed lines (`tasks/fulfillment.py`); None without a request."""
    return None if requested is None else length_score(len(parse_playlist(text).tracks), requested)


def format_reward(prompts: list[Any], completions: list[Any], **kwargs: Any) -> list[float]:
    """TRL reward: :func:`score_format` per completion."""
    return [score_format(completion_text(c)) for c in completions]


def grounded_reward(
    prompts: list[Any],
    completions: list[Any],
    catalog_index: dict[tuple[str, str], str] | None = None,
    **kwargs: Any,
) -> list[float]:
    """TRL reward: :func:`score_grounded` against each prompt's candidates (bind `catalog_index` with partial)."""
    return [
        score_grounded(completion_text(c), prompt_candidates(p), catalog_index)
        for p, c in zip(prompts, completions, strict=True)
    ]


def distinct_artists_reward(prompts: list[Any], completions: list[Any], **kwargs: Any) -> list[float]:
    """TRL reward: :func:`score_distinct_artists` per completion."""
    return [score_distinct_artists(completion_text(c)) for c in completions]


def length_reward(prompts: list[Any], completions: list[Any], **kwargs: Any) -> list[float | None]:
    """TRL reward: :func:`score_length` against the length each prompt's request asks for."""
    return [
        score_length(completion_text(c), requested_length(prompt_request(p)))
        for p, c in zip(prompts, completions, strict=True)
    ]

"""Prompt rendering and playlist parsing: the one format shared by data_prep, training, eval and the registry.

A prompt carries the request, the earlier requests of the conversation and a numbered list of
candidate tracks; the answer is one chosen track a line, ``c7 | Artist - Title``, best first.

Example::

    >>> tracks = [Track("t1", "Nick Drake", "Pink Moon", "folk", 1972, 0.2, 0.15)]
    >>> msgs = render_prompt("mellow folk", [], tracks)
    >>> render_playlist([tracks[0]], tracks)
    'c1 | Nick Drake - Pink Moon'
    >>> parse_playlist("c1 | Nick Drake - Pink Moon").tracks[0].cid
    'c1'
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field

# The version of the prompt and answer format. Prepared data (its manifest), cached builtin models and
# registered models record it, and each refuses to meet a different one (`check_prompt_format`).
# 1: candidate lines showed genre, year and energy to one decimal.
# 2: energy and valence (the mood axis) to two decimals, so every attribute the listener's fit and the
#    fulfilment score read is on the line; training prompts show their candidates in a seeded shuffle.
PROMPT_FORMAT = "2"


class PromptFormatError(ValueError):
    """Data, a model or a registered model made for another version of the prompt format."""


def check_prompt_format(found: str | None, where: str) -> None:
    """Raise :class:`PromptFormatError` unless ``found`` (the format ``where`` was made with) is the current one.

    ``None`` (nothing recorded) is format 1: everything before the version was recorded.
    """
    if (found or "1") != PROMPT_FORMAT:
        raise PromptFormatError(
            f"{where} was made with prompt format {found or '1'}, this code renders format {PROMPT_FORMAT}; "
            "re-run the stage that made it (prep, training or register) with this version"
        )


SYSTEM_PROMPT = (
    "You are encore, a playlist generator. Pick the candidate tracks that best fulfil the request. "
    "Answer with one track per line as `id | artist - title`, best first, and nothing else."
)

# The fixed text of the user turn, also used by data_prep's Spark rendering (data_prep/render.py).
REQUEST_PREFIX = "Request: "
HISTORY_HEADING = "Earlier requests in this conversation:\n"
CANDIDATES_HEADING = "Candidates:\n"
NO_CANDIDATES = "No candidate list: answer with real tracks as `c0 | artist - title`."

_LINE = re.compile(r"^\s*(?P<cid>c\d+)\s*\|\s*(?P<artist>.+?)\s+-\s+(?P<title>.+?)\s*$")


@dataclass(frozen=True)
class Track:
    """The few catalog attributes a prompt shows for one candidate."""

    track_id: str
    artist: str
    title: str
    genre: str = ""
    year: int | None = None
    energy: float | None = None
    valence: float | None = None


@dataclass(frozen=True)
class ParsedTrack:
    """One answer line: the candidate id the model wrote, and the artist and title it claimed."""

    cid: str
    artist: str
    title: str


@dataclass
class ParsedPlaylist:
    """A parsed answer. ``valid`` is true when there is at least one line and every line parses."""

    tracks: list[ParsedTrack] = field(default_factory=list)
    bad_lines: list[str] = field(default_factory=list)

    @property
    def valid(self) -> bool:
        return bool(self.tracks) and not self.bad_lines


def candidate_id(index: int) -> str:
    """Short id of the candidate at 0-based ``index`` (``c1``, ``c2``, …)."""
    return f"c{index + 1}"


def describe(track: Track) -> str:
    """The attributes a candidate line shows after its title: ``folk, 1972, energy 0.20, valence 0.15``.

    Two decimals: the mood ranges of the simulator and the fulfilment score end on 0.05 steps
    (calm is energy ≤ 0.30, sad valence ≤ 0.35), which one decimal cannot tell apart.
    """
    attrs = [a for a in (track.genre, str(track.year) if track.year else "") if a]
    if track.energy is not None:
        attrs.append(f"energy {track.energy:.2f}")
    if track.valence is not None:
        attrs.append(f"valence {track.valence:.2f}")
    return ", ".join(attrs)


def render_candidates(candidates: Sequence[Track]) -> str:
    """Render the candidate list, one ``id | artist - title | attributes`` line each."""
    return "\n".join(
        f"{candidate_id(i)} | {t.artist} - {t.title} | {describe(t)}" for i, t in enumerate(candidates)
    )


def render_user_message(request: str, history: Sequence[str | None], candidates: Sequence[Track]) -> str:
    """The user turn: request, earlier requests of the session (oldest first, missing ones skipped), candidates."""
    parts = [REQUEST_PREFIX + request]
    earlier = [h for h in history if h is not None]
    if earlier:
        parts.append(HISTORY_HEADING + "\n".join(f"- {h}" for h in earlier))
    if candidates:
        parts.append(CANDIDATES_HEADING + render_candidates(candidates))
    else:
        parts.append(NO_CANDIDATES)
    return "\n\n".join(parts)


def render_prompt(
    request: str, history: Sequence[str | None], candidates: Sequence[Track]
) -> list[dict[str, str]]:
    """Conversational prompt (system + user messages) in TRL's format."""
    return [
        {"role": "system", "content": SYSTEM_PROMPT},
        {"role": "user", "content": render_user_message(request, history, candidates)},
    ]


def render_playlist(chosen: Sequence[Track], candidates: Sequence[Track]) -> str:
    """The assistant answer for ``chosen`` tracks, each named by its id among ``candidates``.

    Tracks that are not among the candidates (open generation) get the id ``c0``.
    """
    index = {t.track_id: i for i, t in enumerate(candidates)}
    lines = []
    for t in chosen:
        cid = candidate_id(index[t.track_id]) if t.track_id in index else "c0"
        lines.append(f"{cid} | {t.artist} - {t.title}")
    return "\n".join(lines)


def parse_playlist(text: str) -> ParsedPlaylist:
    """Parse an answer into tracks; lines that do not match the format are kept as ``bad_lines``."""
    parsed = ParsedPlaylist()
    for raw in text.strip().splitlines():
        if not raw.strip():
            continue
        m = _LINE.match(raw)
        if m:
            parsed.tracks.append(ParsedTrack(m["cid"], m["artist"], m["title"]))
        else:
            parsed.bad_lines.append(raw)
    return parsed


def normalise(text: str) -> str:
    """Case-, accent- and punctuation-insensitive form of an artist or title, for matching."""
    text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", " ", text.lower()).strip()


def resolve(
    parsed: ParsedTrack, candidates: Sequence[Track], catalog_index: dict[tuple[str, str], str] | None = None
) -> str | None:
    """The catalog track id an answer line refers to, or None when it is not grounded.

    A line is grounded by its candidate id when the id exists and both the artist and the title
    match that candidate (normalised): a right id with an invented title is a hallucination, not
    a pick. Otherwise it is grounded by an exact normalised (artist, title) match in
    ``catalog_index`` (built by :func:`catalog_key_index`).
    """
    if parsed.cid != "c0":
        i = int(parsed.cid[1:]) - 1
        if 0 <= i < len(candidates) and _same_track(candidates[i], parsed):
            return candidates[i].track_id
    if catalog_index is not None:
        return catalog_index.get((normalise(parsed.artist), normalise(parsed.title)))
    return None


def _same_track(track: Track, parsed: ParsedTrack) -> bool:
    return normalise(track.artist) == normalise(parsed.artist) and normalise(track.title) == normalise(
        parsed.title
    )


def catalog_key_index(tracks: Sequence[Track]) -> dict[tuple[str, str], str]:
    """Map normalised (artist, title) to track id, for grounding lines outside the candidates."""
    return {(normalise(t.artist), normalise(t.title)): t.track_id for t in tracks}

"""Natural-language requests for hidden intents, and follow-up refinements, in many phrasings.

Every constraint of an intent is mentioned in words the retriever parses (the mood table is shared
with :mod:`playlist.retrieval`), e.g. ``{"genre": "folk", "mood": "mellow", "era": [1990, 1999],
"avoid_artists": ["Mara Lindqvist"]}`` -> ``"mellow 90s folk, no Mara Lindqvist"``.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from typing import Any

from playlist.retrieval import MOODS

GENRE_SAYINGS = {
    "hip hop": ("hip hop", "hip-hop", "rap"),
    "r&b": ("r&b", "rnb"),
    "electronic": ("electronic", "edm"),
}
DECADE_WORDS = {1960: "sixties", 1970: "seventies", 1980: "eighties", 1990: "nineties"}
NOUNS = ("music", "songs", "tracks", "stuff", "tunes")

# Wrappers around a noun phrase `{np}` ("mellow folk songs from the 90s").
REQUEST_TEMPLATES = (
    "{np}", "{np} please", "give me some {np}", "make me a playlist of {np}", "i want {np}",
    "play some {np}", "put on some {np}", "can i get some {np}?", "looking for {np}", "i'm in the mood for {np}",
    "queue up {np}", "need {np}", "how about {np}", "hit me with some {np}", "{np}, surprise me",
    "could you put together some {np}?", "let's hear {np}", "build me a playlist: {np}", "got any {np}?",
    "a playlist of {np} would be great", "something for me: {np}", "throw on {np}", "i'd love some {np}",
    "can you find me {np}?", "spin some {np}",
)  # fmt: skip
# Wrappers around modifiers `{pre}` ("sad indie") and the phrases after them `{post}` (" from the 2000s").
PLAYLIST_TEMPLATES = ("give me a {pre} playlist{post}", "start a {pre} mix{post}", "a {pre} playlist{post} please",
                      "make me a {pre} playlist{post}", "i need a {pre} mix{post}")  # fmt: skip
LENGTH_TEMPLATES = (
    "{text}, {n} songs",
    "{text}, about {n} tracks",
    "{text} ({n} songs)",
    "{text} - {n} tracks",
)
AVOID_TEMPLATES = ("{text}, no {a}", "{text} but no {a}", "{text} without {a}", "{text}, nothing by {a}",
                   "{text}, and skip {a}", "{text}, not {a} though", "{text}, but please no {a}")  # fmt: skip
REFINE_TEMPLATES = {
    "mood": ("more {adj}", "can you make it more {adj}?", "something more {adj} please", "a bit more {adj}",
             "hmm, more {adj} maybe", "now something {occasion}"),
    "avoid": ("less of {a}", "no more {a}", "skip {a} please", "without {a} this time", "not {a} though"),
    "older": ("older stuff", "something older", "can we go older?", "older songs please", "more vintage stuff"),
    "newer": ("newer stuff", "something more recent", "anything newer?", "more modern please", "newer songs"),
}  # fmt: skip


def say_genre(genre: str, rng: random.Random) -> str:
    """One way of naming ``genre``."""
    return rng.choice(GENRE_SAYINGS.get(genre, (genre,)))


def say_era(era: list[int], rng: random.Random) -> tuple[str, bool]:
    """One way of naming a decade, and whether it can stand before a noun ("90s rock")."""
    decade = era[0]
    options = [(f"{decade}s", True), (f"from the {decade}s", False)]
    if decade < 2000:  # "00s" and "10s" read oddly; people say "2000s", "2010s"
        options += [
            (f"{decade % 100}s", True),
            (f"from the {decade % 100}s", False),
            (f"'{decade % 100}s", True),
        ]
    if decade in DECADE_WORDS:
        options.append((f"from the {DECADE_WORDS[decade]}", False))
    return rng.choice(options)


def describe(intent: Mapping[str, Any], rng: random.Random) -> tuple[list[str], list[str]]:
    """Genre, mood and era in words: modifiers before a noun ("90s mellow folk") and phrases after it."""
    before: list[str] = []
    after: list[str] = []
    if intent["era"]:
        era, attributive = say_era(intent["era"], rng)
        if attributive and rng.random() < 0.6:
            before.append(era)
        else:
            after.append(era if not attributive else f"from the {era}")
    if intent["mood"]:
        mood = MOODS[intent["mood"]]
        if rng.random() < 0.35:
            after.append(rng.choice(mood.occasions))
        else:
            before.append(rng.choice(mood.words))
        if intent["mood"] in ("chill", "calm", "mellow") and rng.random() < 0.2:
            before.append("instrumental")
    if intent["genre"]:
        before.append(say_genre(intent["genre"], rng))
    return before, after


def phrase_request(intent: Mapping[str, Any], rng: random.Random) -> str:
    """A request a listener might type for ``intent``, mentioning each of its constraints."""
    before, after = describe(intent, rng)
    if before and rng.random() < 0.25:
        text = rng.choice(PLAYLIST_TEMPLATES).format(
            pre=" ".join(before), post="".join(f" {w}" for w in after)
        )
    else:
        noun = [rng.choice(NOUNS)] if not intent["genre"] or rng.random() < 0.3 else []
        text = rng.choice(REQUEST_TEMPLATES).format(np=" ".join([*before, *noun, *after]))
    # A question mark moves to the end: "got any folk, no Mara Lindqvist?"
    question = "?" if text.endswith("?") else ""
    text = text.removesuffix("?")
    if intent["length"]:
        text = rng.choice(LENGTH_TEMPLATES).format(text=text, n=intent["length"])
    for artist in intent["avoid_artists"]:
        text = rng.choice(AVOID_TEMPLATES).format(text=text, a=artist)
    text += question
    return text[0].upper() + text[1:] if rng.random() < 0.4 else text


def phrase_refinement(kind: str, value: str, rng: random.Random) -> str:
    """A follow-up request for a refinement from :func:`playlist.simulator.intents.choose_refinement`."""
    if kind == "mood":
        mood = MOODS[value]
        return rng.choice(REFINE_TEMPLATES["mood"]).format(
            adj=mood.words[0], occasion=rng.choice(mood.occasions)
        )
    if kind == "avoid":
        return rng.choice(REFINE_TEMPLATES["avoid"]).format(a=value)
    if kind == "era":
        return rng.choice(REFINE_TEMPLATES[value])
    raise ValueError(f"unknown refinement kind {kind!r}")

"""Text for training the tiny model's tokenizer: catalog lines, requests, prompts and answers."""

from __future__ import annotations

import random
from collections.abc import Iterator

import numpy as np

from playlist.prompts import SYSTEM_PROMPT, render_candidates, render_playlist, render_user_message
from playlist.retrieval import MOODS, Retriever
from playlist.simulator.catalog import as_prompt_track, make_catalog
from playlist.simulator.intents import IntentSpace, sample_intent
from playlist.simulator.phrasing import REFINE_TEMPLATES, phrase_refinement, phrase_request
from playlist.simulator.policy import build_playlist
from playlist.simulator.users import make_users


def corpus_texts(seed: int = 0, n_requests: int = 2000, n_prompts: int = 200) -> Iterator[str]:
    """Yield a few thousand strings in the formats the model reads and writes.

    The system prompt; the whole default catalog as candidate lines (20 a string); ``n_requests``
    requests in every phrasing and all refinements; ``n_prompts`` full user messages with their
    best answers.
    """
    catalog = make_catalog(seed)
    users = make_users(catalog, 50, np.random.default_rng([seed, 1]))
    space = IntentSpace.from_catalog(catalog)
    rng = random.Random(f"encore-corpus-{seed}")
    records = catalog.to_dict("records")
    tracks = [as_prompt_track(r) for r in records]
    by_id = {r["track_id"]: r for r in records}

    yield SYSTEM_PROMPT
    for i in range(0, len(tracks), 20):
        yield render_candidates(tracks[i : i + 20])
    intents = [sample_intent(users[i % len(users)], space, rng) for i in range(n_requests)]
    for intent in intents:
        yield phrase_request(intent, rng)
    for mood in MOODS:
        for _ in REFINE_TEMPLATES["mood"]:
            yield phrase_refinement("mood", mood, rng)
    for kind in ("older", "newer"):
        yield from REFINE_TEMPLATES[kind]
    for artist in sorted(catalog["artist"].unique()):
        yield phrase_refinement("avoid", artist, rng)

    retriever = Retriever(catalog)
    for intent in intents[:n_prompts]:
        request = phrase_request(intent, rng)
        candidates = [by_id[c] for c in retriever.retrieve(request)]
        chosen = build_playlist(candidates, intent, 1.0, rng)
        shown = [as_prompt_track(c) for c in candidates]
        yield render_user_message(request, [], shown)
        yield render_playlist([as_prompt_track(by_id[c]) for c in chosen], shown)

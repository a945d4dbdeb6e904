"""Synthetic catalog and feedback simulator: encore's embedded default data source, deterministic by seed.

``simulate(out_dir, seed=0)`` writes the raw logs data_prep reads (``responses``, ``interactions``),
the hidden ``intents`` (for evaluation) and the ``catalog``; ``corpus_texts()`` yields text for
training the tiny model's tokenizer. The user model is public so a new policy's playlists can be
replayed through it: ``simulate_feedback(user, intent, track_rows, rng)``.
"""

from playlist.simulator.catalog import CATALOG_COLUMNS, GENRES, as_prompt_track, make_catalog
from playlist.simulator.corpus import corpus_texts
from playlist.simulator.feedback import (
    examination_probability,
    satisfaction,
    simulate_feedback,
    user_fit,
)
from playlist.simulator.intents import INTENT_KEYS, IntentSpace, intent_fit, refine_intent, sample_intent
from playlist.simulator.phrasing import phrase_refinement, phrase_request
from playlist.simulator.policy import Policy, build_playlist
from playlist.simulator.users import User, make_users, taste_fit
from playlist.simulator.writer import simulate

__all__ = [
    "CATALOG_COLUMNS",
    "GENRES",
    "INTENT_KEYS",
    "IntentSpace",
    "Policy",
    "User",
    "as_prompt_track",
    "build_playlist",
    "corpus_texts",
    "examination_probability",
    "intent_fit",
    "make_catalog",
    "make_users",
    "phrase_refinement",
    "phrase_request",
    "refine_intent",
    "sample_intent",
    "satisfaction",
    "simulate",
    "simulate_feedback",
    "taste_fit",
    "user_fit",
]

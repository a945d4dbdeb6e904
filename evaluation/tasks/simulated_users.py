"""Simulated users: replay the simulator's listener on a new policy's playlists, an offline stand-in for an A/B test.

Example (one request, its playlist replayed 3 times for the same simulated user)::

    replay 1: t1 complete + save, t2 skip, t3 complete        saves 1, skips 1, examined 3, thumbs up
    replay 2: t1 complete + save, t2 skip                     saves 1, skips 1, examined 2
    replay 3: t1 complete, t2 complete + save, t3 skip         saves 1, skips 1, examined 3

    sim_saves = 3/3 = 1.0 per playlist, sim_save_rate = 3/8 = 0.375 per track started,
    sim_skip_rate = 3/8 = 0.375, sim_thumbs_up = 1/3

Scoring rule: each eval request is replayed ``n_replays`` times through
:func:`playlist.simulator.simulate_feedback` (position bias, skips, saves, thumbs) with the request's hidden
intent, for a listener drawn from a panel of simulated users (:func:`user_panel`; the same eval user
always gets the same panel member, by a hash of its key). Only grounded tracks are played: a hallucinated
line cannot be, and costs the playlist the saves it could have earned. A track the playlist repeats is
played once, at its first place (:func:`evaluation.score.score_row`): otherwise a policy that loops over
its candidates earns a save for every repetition. ``sim_saves`` is the mean number of
saves per replay; it grows with the playlist's length (more tracks, more chances to save), so
``sim_save_rate``, the saves over the tracks the listener started, tells better tracks from more tracks.
``sim_skip_rate`` is the skips over the tracks the listener started (``skip``, ``play`` or
``complete``; None for both rates when none was started), ``sim_thumbs_up`` and ``sim_thumbs_down`` the share of replays
ending in that verdict, and ``sim_satisfaction`` the simulator's deterministic :func:`satisfaction`.
Replay seeds depend on the request and the replay index only, so every model meets the same random draws
(common random numbers), and differences between models are not replay noise.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from playlist.simulator import User, make_users, satisfaction, simulate_feedback

# The catalog attributes the listener reacts to; a catalog without them cannot be replayed.
REQUIRED_COLUMNS = ("track_id", "artist", "genre", "year", "energy", "valence", "duration_ms", "popularity")
STARTED = frozenset({"skip", "play", "complete"})


def replayable(catalog: pd.DataFrame) -> bool:
    """Whether ``catalog`` has every attribute the simulated listener needs, with no missing value."""
    return (
        all(c in catalog for c in REQUIRED_COLUMNS) and not catalog[list(REQUIRED_COLUMNS)].isna().any().any()
    )


def user_panel(catalog: pd.DataFrame, n_users: int = 64, seed: int = 0) -> list[User]:
    """A fixed panel of simulated listeners whose tastes fit ``catalog`` (the simulator's own user model)."""
    return make_users(catalog, n_users, np.random.default_rng([seed, 7919]))


def _digest(text: str) -> int:
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big")


def user_for(key: str, panel: Sequence[User]) -> User:
    """The panel member that stands in for the eval user ``key`` (stable across runs and models)."""
    return panel[_digest(f"user:{key}") % len(panel)]


def replay_scores(replays: Sequence[Sequence[Mapping[str, Any]]]) -> dict[str, float | None]:
    """Aggregate the interaction rows of several replays of one playlist (see the module docstring).

    Args:
        replays: per replay, the interaction rows (``event`` is read).

    Returns:
        ``sim_saves``, ``sim_save_rate`` and ``sim_skip_rate`` (both None when no track was started),
        ``sim_thumbs_up`` and ``sim_thumbs_down``; empty ``replays`` give None for each.
    """
    if not replays:
        return dict.fromkeys(
            ("sim_saves", "sim_save_rate", "sim_skip_rate", "sim_thumbs_up", "sim_thumbs_down")
        )
    events = [[str(row["event"]) for row in rows] for rows in replays]
    started = sum(e in STARTED for evs in events for e in evs)
    skips = sum(e == "skip" for evs in events for e in evs)
    saves = sum(evs.count("save") for evs in events)
    return {
        "sim_saves": saves / len(events),
        "sim_save_rate": saves / started if started else None,
        "sim_skip_rate": skips / started if started else None,
        "sim_thumbs_up": sum("thumbs_up" in evs for evs in events) / len(events),
        "sim_thumbs_down": sum("thumbs_down" in evs for evs in events) / len(events),
    }


def replay_playlist(
    user: User,
    intent: Mapping[str, Any],
    tracks: Sequence[Mapping[str, Any]],
    *,
    key: str,
    n_replays: int = 8,
) -> dict[str, float | None]:
    """Replay ``tracks`` (catalog rows, in playlist order) ``n_replays`` times for ``user`` and score them.

    Args:
        user: the simulated listener.
        intent: the request's hidden intent (missing constraints default to "does not apply").
        tracks: the playlist's grounded catalog rows.
        key: seeds the replays (use the request's id: the same for every model).
        n_replays: replays of the playlist.

    Returns:
        :func:`replay_scores` plus ``sim_satisfaction``.
    """
    full: dict[str, Any] = {
        "genre": None,
        "energy": None,
        "valence": None,
        "era": None,
        "length": None,
        "avoid_artists": [],
    }
    full.update({k: v for k, v in intent.items() if v is not None})
    replays = [
        simulate_feedback(user, full, tracks, random.Random(_digest(f"replay:{key}:{i}")))
        for i in range(n_replays)
    ]
    return {**replay_scores(replays), "sim_satisfaction": satisfaction(user, full, tracks)}

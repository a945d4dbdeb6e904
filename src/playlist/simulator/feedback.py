"""The simulated listener: how a user reacts to a playlist shown for a hidden intent.

Per track at 0-based position ``p`` the user first *examines* it with a probability that falls with
``p`` (position bias). An examined track is skipped early (a few seconds), skipped late, or played
to the end, the better it fits (intent + taste) the likelier it is completed; good fits are saved
and liked, avoided artists and bad fits disliked or removed. Unexamined tracks leave no event.

Response-level events (``thumbs_up``, ``thumbs_down`` and ``refine``) have ``position = -1``,
``track_id = None`` and ``ms_played = track_ms = 0``; thumbs follow the playlist's overall
satisfaction (:func:`satisfaction`).
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from playlist.simulator.intents import intent_fit
from playlist.simulator.users import User, taste_fit

EPOCH = datetime(2025, 1, 1, tzinfo=UTC)
INTERACTION_KEYS = ("response_id", "track_id", "position", "event", "ms_played", "track_ms", "ts", "text")


def iso(ts: datetime) -> str:
    """ISO-8601 in UTC with milliseconds, e.g. ``2025-01-01T10:00:00.000Z``."""
    return ts.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_ts(text: str) -> datetime:
    """Inverse of :func:`iso`."""
    return datetime.fromisoformat(text)


def examination_probability(position: int, patience: float) -> float:
    """Chance that a user looks at (and starts) the track at ``position``; patient users go further."""
    return 0.97 * (0.84 + 0.1 * patience) ** position


def user_fit(user: User, intent: Mapping[str, Any], track: Mapping[str, Any]) -> float:
    """How much ``user`` wants ``track`` for ``intent``, in [0, 1]: mostly the request, partly taste."""
    fit = intent_fit(intent, track)
    if fit == 0.0 or track["artist"] in user.disliked_artists:
        return 0.0
    return 0.8 * fit + 0.2 * taste_fit(user, track)


def satisfaction(user: User, intent: Mapping[str, Any], tracks: Sequence[Mapping[str, Any]]) -> float:
    """Overall satisfaction with a playlist: fits weighted by how likely each position is examined.

    A playlist shorter than the request asks for is penalised in proportion.
    """
    if not tracks:
        return 0.0
    weights = [examination_probability(p, user.patience) for p in range(len(tracks))]
    mean = sum(w * user_fit(user, intent, t) for w, t in zip(weights, tracks, strict=True)) / sum(weights)
    wanted = intent.get("length") or len(tracks)
    return mean * min(1.0, len(tracks) / wanted)


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


def _row(
    response_id: str, track: Mapping[str, Any] | None, position: int, event: str, ms: int, ts: datetime
) -> dict[str, Any]:
    return {
        "response_id": response_id,
        "track_id": None if track is None else str(track["track_id"]),
        "position": position,
        "event": event,
        "ms_played": ms,
        "track_ms": 0 if track is None else int(track["duration_ms"]),
        "ts": iso(ts),
        "text": None,
    }


def simulate_feedback(
    user: User,
    intent: Mapping[str, Any],
    track_rows: Sequence[Mapping[str, Any]],
    rng: random.Random,
    *,
    response_id: str = "",
    start: datetime = EPOCH,
) -> list[dict[str, Any]]:
    """Simulate ``user``'s interactions with a playlist shown at ``start``.

    Args:
        user: the listener.
        intent: the hidden intent behind the request.
        track_rows: the playlist's catalog rows (``track_id, artist, genre, year, energy, valence,
            duration_ms``), in order.
        rng: the only source of randomness.
        response_id: copied into every row.
        start: when the playlist was shown; every event comes later.

    Returns:
        Interaction rows (the ``interactions`` schema of docs/architecture.md), in time order.
    """
    rows: list[dict[str, Any]] = []
    avoided = set(intent["avoid_artists"]) | set(user.disliked_artists)
    t = start + timedelta(seconds=rng.uniform(2, 8))
    for pos, track in enumerate(track_rows):
        if rng.random() >= examination_probability(pos, user.patience):
            continue
        fit = user_fit(user, intent, track)
        track_ms = int(track["duration_ms"])
        p_skip = _sigmoid(-10.0 * (fit - 0.7) - 2.0 * (user.patience - 0.5))
        early = False
        if rng.random() < p_skip:
            event, early = "skip", rng.random() < 0.35 + 0.55 * (1.0 - fit)
            frac = rng.uniform(0.02, 0.12) if early else rng.uniform(0.3, 0.8)
        elif rng.random() < 0.06:
            event, frac = "play", rng.uniform(0.2, 0.9)  # interrupted: neither skipped nor finished
        else:
            event, frac = "complete", 1.0
        ms = int(track_ms * frac)
        reactions = []
        if not early and rng.random() < 0.6 * fit**6:
            reactions.append("save")
        if not early and rng.random() < 0.4 * fit**6:
            reactions.append("like")
        bad = track["artist"] in avoided
        if rng.random() < (0.6 if bad else 0.35 if fit < 0.25 else 0.0):
            reactions.append("dislike")
        if rng.random() < (0.4 if bad else 0.15 if fit < 0.15 else 0.0):
            reactions.append("remove")
        for reaction in reactions:
            at = int(ms * rng.uniform(0.3, 0.95))
            rows.append(_row(response_id, track, pos, reaction, at, t + timedelta(milliseconds=at)))
        rows.append(_row(response_id, track, pos, event, ms, t + timedelta(milliseconds=ms)))
        t += timedelta(milliseconds=ms + rng.randint(300, 3000))
    sat = satisfaction(user, intent, track_rows)
    u = rng.random()
    p_up = 0.6 * _sigmoid(20.0 * (sat - 0.88))
    p_down = 0.5 * _sigmoid(20.0 * (0.75 - sat))
    if u < p_up + p_down:
        event = "thumbs_up" if u < p_up else "thumbs_down"
        rows.append(_row(response_id, None, -1, event, 0, t + timedelta(seconds=rng.uniform(1, 5))))
    rows.sort(key=lambda r: r["ts"])
    return rows


def refine_row(response_id: str, text: str, ts: datetime) -> dict[str, Any]:
    """The ``refine`` event that carries a follow-up request."""
    return {**_row(response_id, None, -1, "refine", 0, ts), "text": text}

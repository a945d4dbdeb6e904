"""A feedback round on a trained policy: the logs' simulated users meet its playlists for their own requests.

Production logs come from the model that is deployed; the simulator's come from two synthetic
policies (``sim-a``, ``sim-b``), so preference pairs built from them contrast playlists the trained
model would not write. A round shows the trained policy's playlists for the logged requests to
the same users, with the same hidden intents, and records how they react (:func:`simulate_feedback`):
pairs built from the round's logs then hold the policy's own answers (on-policy data), e.g. its
playlist against ``sim-a``'s for the same request.

Each answered prompt (a logged session turn) gets one response per sample, ``policy`` named after
the model (``encore-sft``), shown after everything the session logged. The result is
a whole set of logs (the originals and the round's rows) for ``data.source: logs``.
"""

from __future__ import annotations

import json
import random
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from playlist.simulator.feedback import iso, parse_ts, simulate_feedback
from playlist.simulator.users import User

Logs = dict[str, list[dict[str, Any]]]


def prompts_of(responses: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """The first logged response of every (session, turn): one per prompt, in log order."""
    seen: set[tuple[str, int]] = set()
    firsts = []
    for row in responses:
        key = (str(row["session_id"]), int(row["turn"]))
        if key not in seen:
            seen.add(key)
            firsts.append(row)
    return firsts


def add_round(
    logs: Mapping[str, Sequence[dict[str, Any]]],
    answers: Mapping[str, Sequence[Sequence[str]]],
    users: Mapping[str, User],
    *,
    policy: str,
    seed: int = 0,
) -> Logs:
    """The logs with the round's responses, their listeners' interactions and their intents added.

    Args:
        logs: ``responses``, ``interactions``, ``intents`` and ``catalog`` rows as the simulator writes them.
        answers: per prompt (its first response id, :func:`prompts_of`), the playlists to show, one per
            sample, as catalog track ids; an empty playlist is not shown.
        users: the simulated users by ``user_id`` (the ones that wrote the logs).
        policy: the ``policy`` column of the new responses, e.g. ``encore-sft``.
        seed: seeds the listeners' reactions.

    Returns:
        New lists (the inputs are not changed): the originals, then the round's rows.

    Raises:
        KeyError: an answered prompt, its intent, its user or a shown track is not in the logs.
    """
    by_id = {str(r["response_id"]): r for r in logs["responses"]}
    intents = {str(r["response_id"]): str(r["intent"]) for r in logs["intents"]}  # JSON text, copied as is
    tracks = {str(t["track_id"]): t for t in logs["catalog"]}
    session_of = {rid: str(r["session_id"]) for rid, r in by_id.items()}
    last_event: dict[str, str] = {}  # by session: the round comes after the whole logged session
    for row in [*logs["responses"], *logs["interactions"]]:
        session = session_of[str(row["response_id"])]
        last_event[session] = max(last_event.get(session, ""), str(row["ts"]))
    clock: dict[str, datetime] = {}  # when a session's next round playlist is shown
    rng = random.Random(f"encore-round-{policy}-{seed}")
    out: Logs = {name: list(rows) for name, rows in logs.items()}
    for prompt_id, playlists in answers.items():
        source = by_id[prompt_id]
        user = users[str(source["user_id"])]
        intent = json.loads(intents[prompt_id])
        session = session_of[prompt_id]
        shown_at = clock.get(session) or parse_ts(last_event[session]) + timedelta(seconds=30)
        for k, playlist in enumerate(playlists):
            if not playlist:
                continue
            response_id = f"{prompt_id}-{policy}-{k + 1}"
            out["responses"].append(
                {
                    **source,
                    "response_id": response_id,
                    "ts": iso(shown_at),
                    "track_ids": list(playlist),
                    "policy": policy,
                }
            )
            out["intents"].append({"response_id": response_id, "intent": intents[prompt_id]})
            events = simulate_feedback(
                user, intent, [tracks[t] for t in playlist], rng, response_id=response_id, start=shown_at
            )
            out["interactions"] += events
            shown_at = max([shown_at, *(parse_ts(e["ts"]) for e in events)]) + timedelta(seconds=30)
        clock[session] = shown_at
    return out

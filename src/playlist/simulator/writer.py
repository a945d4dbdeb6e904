"""The simulator's entry point: sessions of requests, A/B responses and feedback, written as JSON Lines.

Each session: a user sends a request (from a hidden intent); two policies answer it from the same
retrieved candidates (A/B variants, shown one after the other); the user reacts to both; when
the last one shown disappointed, the user may send a refinement (a ``refine`` event on the last variant shown),
which becomes the session's next turn with the earlier requests as ``history``.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

from playlist.retrieval import Retriever
from playlist.simulator.catalog import make_catalog
from playlist.simulator.feedback import EPOCH, iso, parse_ts, refine_row, satisfaction, simulate_feedback
from playlist.simulator.intents import IntentSpace, choose_refinement, refine_intent, sample_intent
from playlist.simulator.phrasing import phrase_refinement, phrase_request
from playlist.simulator.policy import Policy, build_playlist
from playlist.simulator.users import make_users

REFINE_BELOW = 0.85  # a session goes on only when the last variant shown satisfied less than this


def simulate(
    out_dir: Path,
    *,
    seed: int = 0,
    n_users: int = 60,
    sessions_per_user: int = 3,
    n_artists: int = 300,
    n_tracks: int = 2400,
    candidates_k: int = 20,
    policy_quality: tuple[float, float] = (0.8, 0.3),
    max_turns: int = 3,
    refine_prob: float = 0.7,
    start: datetime = EPOCH,
    days: int = 60,
) -> dict[str, Path]:
    """Simulate logged feedback and write ``responses``, ``interactions``, ``intents`` and ``catalog``.

    Args:
        out_dir: created if missing; receives ``<name>.jsonl`` for each of the four logs.
        seed: the same seed gives byte-identical files.
        n_users: simulated users.
        sessions_per_user: sessions per user, spread over ``days`` days from ``start``.
        n_artists: catalog artists.
        n_tracks: catalog tracks.
        candidates_k: candidates retrieved per request (the prompt's candidate list).
        policy_quality: quality of the A and B policies (``sim-a``, ``sim-b``) in [0, 1].
        max_turns: most turns in a session (the first request and its refinements).
        refine_prob: chance that a dissatisfied user refines rather than leaves.
        start: when the simulated period begins (UTC).
        days: length of the simulated period.

    Returns:
        The written paths by name: ``responses``, ``interactions``, ``intents``, ``catalog``.
    """
    catalog = make_catalog(seed, n_artists=n_artists, n_tracks=n_tracks)
    users = make_users(catalog, n_users, np.random.default_rng([seed, 1]))
    space = IntentSpace.from_catalog(catalog)
    retriever = Retriever(catalog)
    tracks = {row["track_id"]: row for row in catalog.to_dict("records")}
    policies = [Policy(f"sim-{name}", q) for name, q in zip("ab", policy_quality, strict=True)]
    rng = random.Random(f"encore-simulator-{seed}")

    responses: list[dict[str, Any]] = []
    interactions: list[dict[str, Any]] = []
    intents: list[dict[str, Any]] = []
    n_sessions = 0
    for user in users:
        starts = sorted(rng.uniform(0, days * 86400) for _ in range(sessions_per_user))
        for offset in starts:
            n_sessions += 1
            session_id = f"s{n_sessions:06d}"
            t = start + timedelta(seconds=round(offset))
            intent = sample_intent(user, space, rng)
            request = phrase_request(intent, rng)
            history: list[str] = []
            for turn in range(max_turns):
                candidates = retriever.retrieve(request, k=candidates_k, history=history)
                order = policies if rng.random() < 0.5 else policies[::-1]
                last_id, last_shown, last_sat = "", [], 0.0
                for policy in order:
                    playlist = build_playlist([tracks[c] for c in candidates], intent, policy.quality, rng)
                    shown = [tracks[tid] for tid in playlist]
                    last_id = f"r{len(responses) + 1:07d}"
                    responses.append(
                        {"response_id": last_id, "session_id": session_id, "user_id": user.user_id,
                         "turn": turn, "ts": iso(t), "request": request, "history": list(history),
                         "candidates": candidates, "track_ids": playlist, "policy": policy.name}
                    )  # fmt: skip
                    intents.append({"response_id": last_id, "intent": json.dumps(intent)})
                    events = simulate_feedback(user, intent, shown, rng, response_id=last_id, start=t)
                    interactions += events
                    t = max([t, *(parse_ts(e["ts"]) for e in events)]) + timedelta(seconds=rng.uniform(5, 30))
                    last_shown, last_sat = shown, satisfaction(user, intent, shown)
                if turn + 1 == max_turns or last_sat >= REFINE_BELOW or rng.random() >= refine_prob:
                    break
                refinement = choose_refinement(user, intent, last_shown, rng)
                if refinement is None:
                    break
                text = phrase_refinement(*refinement, rng)
                interactions.append(refine_row(last_id, text, t))
                t += timedelta(seconds=rng.uniform(2, 10))
                history, request = [*history, request], text
                intent = refine_intent(intent, *refinement)

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    logs = {
        "responses": responses,
        "interactions": interactions,
        "intents": intents,
        "catalog": catalog.to_dict("records"),
    }
    paths = {name: out_dir / f"{name}.jsonl" for name in logs}
    for name, rows in logs.items():
        write_jsonl(paths[name], rows)
    return paths


def write_jsonl(path: Path, rows: Iterable[dict[str, Any]]) -> None:
    """Write one JSON object a line (UTF-8, ``\\n`` line ends), the same bytes for the same rows."""
    with path.open("w", encoding="utf-8", newline="\n") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")

"""A feedback round on a new policy (playlist.simulator.rounds): its playlists meet the logs' own users."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from playlist.simulator import make_catalog, make_users, simulate
from playlist.simulator.feedback import parse_ts
from playlist.simulator.rounds import add_round, prompts_of

SIM = {"seed": 5, "n_users": 6, "sessions_per_user": 2, "n_artists": 30, "n_tracks": 200, "candidates_k": 8}


@pytest.fixture(scope="module")
def logs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[dict]]:
    paths = simulate(tmp_path_factory.mktemp("sim"), **SIM)
    return {
        name: [json.loads(line) for line in Path(p).read_text().splitlines()] for name, p in paths.items()
    }


@pytest.fixture(scope="module")
def users(logs: dict) -> dict:
    catalog = make_catalog(SIM["seed"], n_artists=SIM["n_artists"], n_tracks=SIM["n_tracks"])
    return {
        u.user_id: u for u in make_users(catalog, SIM["n_users"], np.random.default_rng([SIM["seed"], 1]))
    }


def test_one_prompt_per_session_turn(logs: dict) -> None:
    prompts = prompts_of(logs["responses"])
    turns = Counter((r["session_id"], r["turn"]) for r in logs["responses"])
    assert len(prompts) == len(turns)  # the A/B variants of a turn share its prompt
    assert all(turns[(p["session_id"], p["turn"])] == 2 for p in prompts)


def test_a_round_adds_the_policys_playlists_and_their_feedback(logs: dict, users: dict) -> None:
    prompts = prompts_of(logs["responses"])[:3]
    answers = {p["response_id"]: [p["candidates"][:4], p["candidates"][2:5], []] for p in prompts}
    out = add_round(logs, answers, users, policy="encore-sft", seed=1)

    new = out["responses"][len(logs["responses"]) :]
    assert out["responses"][: len(logs["responses"])] == logs["responses"]  # originals first, unchanged
    assert len(new) == 6  # two playlists each; the empty third answer is not shown
    assert {r["policy"] for r in new} == {"encore-sft"}
    first = new[0]
    source = prompts[0]
    assert first["response_id"] == f"{source['response_id']}-encore-sft-1"
    for key in ("session_id", "user_id", "turn", "request", "history", "candidates"):
        assert first[key] == source[key]
    assert first["track_ids"] == source["candidates"][:4]
    # Shown after everything its session logged, and every reaction after it was shown.
    session_ts = [
        r["ts"] for r in logs["responses"] + logs["interactions"]
        if r["response_id"] in {x["response_id"] for x in logs["responses"] if x["session_id"] == first["session_id"]}
    ]  # fmt: skip
    assert first["ts"] > max(session_ts)
    shown = {r["response_id"]: r["ts"] for r in new}
    events = [e for e in out["interactions"] if e["response_id"] in shown]
    assert events and all(parse_ts(e["ts"]) >= parse_ts(shown[e["response_id"]]) for e in events)
    assert {e["track_id"] for e in events if e["track_id"]} <= {t for r in new for t in r["track_ids"]}
    # The hidden intent is the request's own.
    intents = {r["response_id"]: r["intent"] for r in out["intents"]}
    assert intents[first["response_id"]] == intents[source["response_id"]]
    assert out["catalog"] == logs["catalog"]


def test_rounds_are_deterministic_and_leave_the_inputs_alone(logs: dict, users: dict) -> None:
    before = {name: list(rows) for name, rows in logs.items()}
    answers = {p["response_id"]: [p["candidates"][:5]] for p in prompts_of(logs["responses"])}
    a = add_round(logs, answers, users, policy="encore-dpo", seed=2)
    assert a == add_round(logs, answers, users, policy="encore-dpo", seed=2)
    assert a != add_round(logs, answers, users, policy="encore-dpo", seed=3)
    assert logs == before


def test_better_fitting_playlists_earn_more_saves(logs: dict, users: dict) -> None:
    """The round's feedback carries the simulator's signal: the same users save more from fitting tracks."""
    from playlist.simulator import intent_fit

    tracks = {t["track_id"]: t for t in logs["catalog"]}
    intents = {r["response_id"]: json.loads(r["intent"]) for r in logs["intents"]}
    prompts = prompts_of(logs["responses"])

    def ranked(p: dict, best: bool) -> list[str]:
        fit = {c: intent_fit(intents[p["response_id"]], tracks[c]) for c in p["candidates"]}
        return sorted(p["candidates"], key=lambda c: fit[c], reverse=best)[:3]  # disjoint: 3 + 3 of 8

    def saves(best: bool) -> int:
        answers = {p["response_id"]: [ranked(p, best)] * 20 for p in prompts}  # 20 replays each
        out = add_round(logs, answers, users, policy="p", seed=0)
        return sum(e["event"] == "save" for e in out["interactions"][len(logs["interactions"]) :])

    best, worst = saves(best=True), saves(best=False)
    assert best > 1.5 * worst, (best, worst)  # 271 vs 128 as written

"""`encore collect`: a feedback round on the smoke SFT model, then prep of the logs with the round.

Works on a copy of the smoke run's simulated logs and SFT adapter, with its own tracking store, so
the shared smoke run's outputs and store stay as the other tests expect them.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from mlflow import MlflowClient

from playlist.keys import split_of, user_key_of
from playlist.simulator import make_catalog, make_users
from playlist.simulator.rounds import add_round, prompts_of
from playlist.simulator.writer import write_jsonl

ROOT = Path(__file__).resolve().parents[2]
SMOKE = ROOT / "recipes" / "smoke" / "pipeline.yaml"
ENCORE = [sys.executable, "-m", "encore.cli"]
SEED = yaml.safe_load(SMOKE.read_text())["seed"]
SIM = yaml.safe_load(SMOKE.read_text())["data"]["simulator"]

pytestmark = pytest.mark.integration


def _jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


MAX_PROMPTS = 12


@pytest.fixture(scope="module")
def collected(smoke: dict, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """`encore collect` on the smoke SFT model, then a copying policy's round on top, then prep of all of it.

    The smoke model (4 SFT steps of a random tiny model) rarely writes a line that grounds, so the
    round prep reads also holds playlists of the first 5 candidates for every training request:
    rows prep must validate, pair and split like any other.
    """
    workdir = tmp_path_factory.mktemp("collect")
    for part in ("raw", "sft", "prepared"):
        shutil.copytree(smoke["workdir"] / "outputs" / "smoke" / part, workdir / "outputs" / "smoke" / part)
    store = workdir / "collect.db"
    env = {**os.environ, **smoke["secrets"], "MLFLOW_TRACKING_URI": f"sqlite:///{store}"}

    def encore(*args: str) -> subprocess.CompletedProcess:
        done = subprocess.run(
            [*ENCORE, *args], cwd=workdir, env=env, capture_output=True, text=True, timeout=900
        )
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-5000:]
        return done

    collect = [
        "collect",
        str(SMOKE),
        "--samples",
        "2",
        "--temperature",
        "1.0",
        "--max-prompts",
        str(MAX_PROMPTS),
    ]
    done = encore(*collect)
    round_dir = workdir / "outputs" / "smoke" / "raw" / "round-sft"
    logs = {n: _jsonl(round_dir / f"{n}.jsonl") for n in ("responses", "interactions", "catalog", "intents")}
    key = smoke["secrets"]["ENCORE_HASH_KEY"]
    train = [
        p for p in prompts_of(logs["responses"]) if split_of(user_key_of(p["user_id"], key), 0.2) == "train"
    ]
    catalog = make_catalog(SEED, n_artists=SIM["n_artists"], n_tracks=SIM["n_tracks"])
    users = {u.user_id: u for u in make_users(catalog, SIM["n_users"], np.random.default_rng([SEED, 1]))}
    copying = add_round(
        logs, {p["response_id"]: [p["candidates"][:5]] for p in train}, users, policy="copy-5"
    )
    both = workdir / "both"
    both.mkdir()
    for name, rows in copying.items():
        write_jsonl(both / f"{name}.jsonl", rows)
    encore(
        "prep", str(SMOKE), "--set", "name=smoke-round", "--set", "data.source=logs",
        *[a for n in copying for a in ("--set", f"data.logs.{n}={both / n}.jsonl")],
    )  # fmt: skip
    client = MlflowClient(f"sqlite:///{store}")
    experiments = [e.experiment_id for e in client.search_experiments()]
    (run,) = client.search_runs(experiments, "tags.`encore.stage` = 'collect'")
    return {
        "workdir": workdir,
        "stdout": done.stdout,
        "round": round_dir,
        "both": both,
        "key": key,
        "run": run,
    }


def test_collect_answers_training_users_requests_and_accounts_for_every_answer(collected: dict) -> None:
    raw = collected["workdir"] / "outputs" / "smoke" / "raw"
    original = _jsonl(raw / "responses.jsonl")
    responses = _jsonl(collected["round"] / "responses.jsonl")
    assert responses[: len(original)] == original
    new = responses[len(original) :]
    assert {r["policy"] for r in new} <= {"encore-sft"}
    assert all(split_of(user_key_of(r["user_id"], collected["key"]), 0.2) == "train" for r in new)
    metrics = collected["run"].data.metrics
    assert metrics["collect/prompts"] == MAX_PROMPTS
    assert metrics["collect/responses"] == len(new)
    assert metrics["collect/responses"] + metrics["collect/empty_answers"] == 2 * MAX_PROMPTS
    assert collected["run"].data.params["collect.model"] == "sft"
    assert collected["run"].data.params["collect.max_prompts"] == str(MAX_PROMPTS)
    assert "prep them with: encore prep" in collected["stdout"]


def test_prep_of_a_round_keeps_every_row_and_the_held_out_set(collected: dict) -> None:
    out = collected["workdir"] / "outputs"
    before = json.loads((out / "smoke" / "prepared" / "manifest.json").read_text())
    after = json.loads((out / "smoke-round" / "prepared" / "manifest.json").read_text())
    n_responses = len(_jsonl(collected["both"] / "responses.jsonl"))
    assert n_responses > before["inputs"]["responses"]["rows_in"]
    assert after["inputs"]["responses"]["rows_in"] == after["inputs"]["responses"]["rows_out"] == n_responses
    assert after["inputs"]["interactions"]["rows_quarantined"] == 0
    assert after["outputs"]["quarantine"]["rows"] == 0
    # The round answered training users only: the held-out requests are the same rows.
    assert after["outputs"]["eval"]["fingerprint"] == before["outputs"]["eval"]["fingerprint"]
    assert after["outputs"]["pairs"]["rows"] > before["outputs"]["pairs"]["rows"]


def test_collect_refuses_logs_it_cannot_replay_and_a_model_not_trained(tmp_path: Path) -> None:
    for name in ("r", "i", "c"):
        (tmp_path / f"{name}.jsonl").touch()
    env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'mlflow.db'}"}

    def collect(*sets: str) -> str:
        args = [a for s in sets for a in ("--set", s)]
        done = subprocess.run(
            [*ENCORE, "collect", str(SMOKE), *args],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert done.returncode == 1
        return done.stderr + done.stdout

    logs = (
        "data.source=logs",
        "data.logs.responses=r.jsonl",
        "data.logs.interactions=i.jsonl",
        "data.logs.catalog=c.jsonl",
    )
    assert "needs `data.source: simulator`" in collect(*logs)
    assert "no trained adapter for 'sft'" in collect()

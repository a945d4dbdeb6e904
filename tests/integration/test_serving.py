"""The registered model over HTTP, served the way the README says: `encore serve`, the venv not on PATH.

`mlflow models serve` starts its scoring server as `uvicorn` looked up on PATH, so from a shell that
did not activate the venv it fails with `uvicorn: not found`; `encore serve` puts the environment's
bin directory first. The server answers a real `POST /invocations` with the pyfunc's playlists:
grounded (every track id it returns is in the catalog, and flagged so) and the same as the trained
policy gives in this process. The smoke model is not asserted to answer well, only to answer the same.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sysconfig
import time
from pathlib import Path

import pandas as pd
import pytest
import requests

from encore.config import load_recipe

ROOT = Path(__file__).resolve().parents[2]
SMOKE = ROOT / "recipes" / "smoke" / "pipeline.yaml"
pytestmark = pytest.mark.integration
MODEL = "models:/playlist-generator@candidate"
SYSTEM_PATH = "/usr/local/bin:/usr/bin:/bin"  # a login shell's PATH, without the venv


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _stop(server: subprocess.Popen) -> None:
    """SIGTERM to the server's process group (MLflow's CLI and its uvicorn), SIGKILL if it lingers."""
    if server.poll() is None:
        os.killpg(server.pid, signal.SIGTERM)
    try:
        server.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(server.pid, signal.SIGKILL)
        server.wait(timeout=30)


def test_encore_serve_answers_invocations_with_grounded_playlists(smoke: dict, tmp_path: Path) -> None:
    out = smoke["workdir"] / "outputs/smoke"
    row = pd.read_parquet(out / "prepared/eval").sort_values("prompt_id").iloc[0]
    # Every record names every column (null where none): a missing key becomes NaN, which the signature refuses.
    records = [
        {"request": "mellow folk for a rainy sunday", "history": [], "candidates": None},  # retrieved
        {"request": row["request"], "history": list(row["history"]), "candidates": list(row["candidates"])},
    ]
    port, log = _free_port(), tmp_path / "serve.log"
    env = {k: v for k, v in os.environ.items() if k not in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")}
    env.pop("VIRTUAL_ENV", None)
    env["PATH"] = SYSTEM_PATH
    encore = Path(sysconfig.get_path("scripts")) / "encore"  # `.venv/bin/encore`, as the README has it
    with log.open("wb") as sink:
        server = subprocess.Popen(
            [str(encore), "serve", MODEL, "--port", str(port)],  # the default store: ./mlruns/mlflow.db
            cwd=smoke["workdir"], env=env, stdout=sink, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + 300
        while True:
            assert server.poll() is None, f"the server exited {server.returncode}:\n{log.read_text()[-3000:]}"
            assert time.monotonic() < deadline, f"no /ping answer in 300 s:\n{log.read_text()[-3000:]}"
            try:
                if requests.get(f"http://127.0.0.1:{port}/ping", timeout=5).status_code == 200:
                    break
            except requests.ConnectionError:
                pass
            time.sleep(1)
        answer = requests.post(
            f"http://127.0.0.1:{port}/invocations", json={"dataframe_records": records}, timeout=300
        )
    finally:
        _stop(server)
    assert answer.status_code == 200, answer.text[:3000]
    predictions = answer.json()["predictions"]
    assert [p["request"] for p in predictions] == [r["request"] for r in records]

    catalog = set(pd.read_parquet(out / "prepared/validated/catalog")["track_id"])
    for p in predictions:
        assert len(p["track_ids"]) == len(p["artists"]) == len(p["titles"]) == len(p["grounded"])
        # A line the model made up comes back flagged, with no id: never an id outside the catalog.
        assert all(
            (tid in catalog) if ok else tid == ""
            for tid, ok in zip(p["track_ids"], p["grounded"], strict=True)
        )
        assert isinstance(p["completion"], str)

    from encore.train.lora import load_policy
    from playlist.inference import PlaylistGenerator

    # The policy as the register stage builds it, from the recipe the smoke run used.
    recipe = load_recipe(SMOKE)
    model, tokenizer = load_policy(recipe.base_model, [out / s / "adapter" for s in recipe.policy_stages])
    generator = PlaylistGenerator(
        model,
        tokenizer,
        pd.read_parquet(out / "prepared/validated/catalog"),
        retrieval_k=recipe.registry.retrieval_k,
        max_new_tokens=recipe.registry.max_new_tokens,
    )
    expected = generator.generate(records)
    assert [p["track_ids"] for p in predictions] == [e["track_ids"] for e in expected]
    assert [p["completion"] for p in predictions] == [e["completion"] for e in expected]

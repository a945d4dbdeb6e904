"""`encore flywheel`: two on-policy rounds and the matched-compute control on the smoke SFT model, then a resume.

Works on a copy of the smoke run's logs, prepared data and SFT adapter, with its own tracking store, and
a cut-down loop (16 training requests, 2 samples each, 2 DPO steps a round, 12 held-out requests): it checks
the loop's wiring and records, not that the policy improves (bench/flywheel.py measures that).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from mlflow import MlflowClient

from playlist.keys import split_of, user_key_of

ROOT = Path(__file__).resolve().parents[2]
SMOKE = ROOT / "recipes" / "smoke" / "pipeline.yaml"
LOOP = {
    "flywheel.rounds": 2, "flywheel.samples": 2, "flywheel.max_prompts": 16, "flywheel.max_requests": 12,
    "flywheel.margin": 0.0, "flywheel.length_tolerance": 20, "dpo.args.max_steps": 2,
    "eval.max_new_tokens": 64,
}  # fmt: skip

pytestmark = pytest.mark.integration


def _jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.fixture(scope="module")
def wheel(smoke: dict, tmp_path_factory: pytest.TempPathFactory) -> dict:
    workdir = tmp_path_factory.mktemp("flywheel")
    for part in ("raw", "sft", "prepared"):
        shutil.copytree(smoke["workdir"] / "outputs" / "smoke" / part, workdir / "outputs" / "smoke" / part)
    store = f"sqlite:///{workdir / 'flywheel.db'}"
    env = {**os.environ, **smoke["secrets"], "MLFLOW_TRACKING_URI": store}
    flags = [a for k, v in LOOP.items() for a in ("--set", f"{k}={v}")]

    def flywheel() -> subprocess.CompletedProcess:
        done = subprocess.run(
            [sys.executable, "-m", "encore.cli", "flywheel", str(SMOKE), *flags],
            cwd=workdir, env=env, capture_output=True, text=True, timeout=1200,
        )  # fmt: skip
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-5000:]
        return done

    done = flywheel()
    return {"workdir": workdir, "out": workdir / "outputs" / "smoke" / "flywheel", "stdout": done.stdout,
            "client": MlflowClient(store), "key": smoke["secrets"]["ENCORE_HASH_KEY"], "again": flywheel}  # fmt: skip


def _runs(client: MlflowClient) -> list:
    experiments = [e.experiment_id for e in client.search_experiments()]
    return client.search_runs(experiments, order_by=["attributes.start_time ASC"])


def test_each_round_is_a_nested_run_with_its_reward_model_data_and_policy(wheel: dict) -> None:
    runs = _runs(wheel["client"])
    (parent,) = [r for r in runs if r.data.tags.get("encore.stage") == "flywheel"]
    assert parent.info.status == "FINISHED"
    rounds = [r for r in runs if r.data.tags.get("encore.stage", "").startswith("flywheel-round-")]
    assert [r.data.tags["encore.stage"] for r in rounds] == ["flywheel-round-1", "flywheel-round-2"]
    for run in rounds:
        assert run.data.tags["mlflow.parentRunId"] == parent.info.run_id
        assert {"reward/pair_accuracy", "reward/heldout_ndcg_10", "round/pairs"} <= set(run.data.metrics)
        assert [d.dataset.name for d in run.inputs.dataset_inputs] == [
            f"samples-{run.data.tags['encore.stage'][-1]}"
        ]
        (dpo,) = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == run.info.run_id]
        assert dpo.data.tags["encore.stage"] == "dpo" and dpo.data.metrics["train/steps"] == 2
        assert [d.dataset.name for d in dpo.inputs.dataset_inputs] == ["pairs-train"]
    metrics = json.loads((wheel["out"] / "metrics.json").read_text())
    assert metrics.keys() == {"sft", "round-1", "round-2", "control"}
    assert all(m["n_requests"] == 12 for m in metrics.values())
    assert parent.data.metrics["flywheel/preference_steps"] == 4  # two rounds of two steps
    assert "round-2 − control (paired over the same requests):" in wheel["stdout"]


def test_the_control_continues_sft_for_the_rounds_steps(wheel: dict) -> None:
    runs = _runs(wheel["client"])
    (control,) = [r for r in runs if r.data.tags.get("encore.stage") == "flywheel-control"]
    (trained,) = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == control.info.run_id]
    assert trained.data.metrics["train/steps"] == 4
    assert (wheel["out"] / "control" / "sft" / "adapter" / "adapter_config.json").exists()


def test_the_final_policy_is_registered_with_its_rounds_as_lineage(wheel: dict) -> None:
    client = wheel["client"]
    version = client.get_model_version_by_alias("playlist-generator", "candidate")
    assert version.tags["stages"] == "sft+dpo-round-1+dpo-round-2"
    metrics = json.loads((wheel["out"] / "metrics.json").read_text())
    assert float(version.tags["metric.fulfillment"]) == pytest.approx(
        metrics["round-2"]["fulfillment"], abs=1e-5
    )
    (register,) = [r for r in _runs(client) if r.info.run_id == version.tags["run_id"]]
    assert register.data.tags["encore.stage"] == "register"
    assert register.data.metrics["register/roundtrip_match"] == 1.0


def test_each_round_shows_one_playlist_per_training_request_and_the_logs_grow(wheel: dict) -> None:
    original = _jsonl(wheel["workdir"] / "outputs" / "smoke" / "raw" / "responses.jsonl")
    one = _jsonl(wheel["out"] / "round-1" / "raw" / "responses.jsonl")
    two = _jsonl(wheel["out"] / "round-2" / "raw" / "responses.jsonl")
    assert one[: len(original)] == original and two[: len(one)] == one
    assert len(two) > len(original)  # the smoke model grounds few lines: 7 and 2 playlists were shown in CI
    for rows, policy in ((one[len(original) :], "encore-flywheel-0"), (two[len(one) :], "encore-flywheel-1")):
        assert len(rows) <= LOOP["flywheel.max_prompts"]  # an answer with no grounded track shows nothing
        assert {r["policy"] for r in rows} <= {policy}
        assert all(split_of(user_key_of(r["user_id"], wheel["key"]), 0.2) == "train" for r in rows)
    samples = pd.read_parquet(wheel["out"] / "round-1" / "samples.parquet")
    assert len(samples) == LOOP["flywheel.max_prompts"] * LOOP["flywheel.samples"]
    pairs = pd.read_parquet(wheel["out"] / "round-1" / "pairs")
    assert set(pairs["prompt_id"]) <= set(samples["prompt_id"])
    assert (pairs["reward_chosen"] >= pairs["reward_rejected"]).all()


def test_a_crashed_round_resumes_in_its_run_and_finished_rounds_are_not_redone(wheel: dict) -> None:
    out = wheel["out"]
    record = json.loads((out / "round-2" / "round.json").read_text())
    (out / "round-2" / "round.json").write_text(json.dumps({"run_id": record["run_id"], "status": "RUNNING"}))
    for stale in (out / "round-2" / "eval.json", out / "metrics.json"):
        stale.unlink()
    first = (out / "round-1" / "samples.parquet").stat().st_mtime_ns
    wheel["again"]()
    assert (out / "round-1" / "samples.parquet").stat().st_mtime_ns == first
    assert json.loads((out / "round-2" / "round.json").read_text())["status"] == "FINISHED"
    runs = _runs(wheel["client"])
    seconds = [r for r in runs if r.data.tags.get("encore.stage") == "flywheel-round-2"]
    assert [r.info.run_id for r in seconds] == [record["run_id"]]  # the same MLflow run, finished
    assert seconds[0].info.status == "FINISHED"
    assert json.loads((out / "metrics.json").read_text()).keys() == {"sft", "round-1", "round-2", "control"}

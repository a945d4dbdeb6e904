"""The smoke pipeline end to end through the real CLI: prep → SFT → DPO → eval → register, then the registry round trip.

The `smoke` fixture (one run per session, shared with other tests) lives in conftest.py.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from mlflow import MlflowClient
from safetensors import safe_open

ROOT = Path(__file__).resolve().parents[2]
SMOKE = ROOT / "recipes" / "smoke" / "pipeline.yaml"
ENCORE = [sys.executable, "-m", "encore.cli"]

pytestmark = pytest.mark.integration


def runs_by_stage(client: MlflowClient) -> dict[str, object]:
    experiment = client.get_experiment_by_name("encore-smoke")
    runs = client.search_runs([experiment.experiment_id])
    return {r.data.tags["encore.stage"]: r for r in runs}


def test_summary_names_run_store_and_registered_model(smoke: dict) -> None:
    out = smoke["stdout"]
    assert "mlflow ui --backend-store-uri sqlite:///mlruns/mlflow.db" in out
    assert "playlist-generator version 1 @candidate" in out
    assert "encore serve models:/playlist-generator@candidate" in out
    assert "outputs/smoke/eval/report.html" in out and "a held-out request: " in out
    # The eval metrics side by side: base, SFT and DPO first (then the references), a value in every column.
    table = {cells[0]: cells[1:] for cells in map(str.split, out.splitlines()) if cells}
    assert table["metric"][:3] == ["base", "sft", "dpo"]
    for metric in ("format_valid", "grounded", "fulfillment"):
        assert len(table[metric]) == len(table["metric"]), metric
        assert all(re.fullmatch(r"\d\.\d{3}", value) for value in table[metric]), table[metric]


def test_one_line_per_stage_and_the_libraries_output_in_the_log(smoke: dict) -> None:
    out, log = smoke["stdout"], smoke["workdir"] / "outputs/smoke/logs/pipeline.log"
    stages = re.findall(r"^✓ (\w+) +\d+ s", out, re.MULTILINE)
    assert stages == ["prep", "sft", "dpo", "eval", "register"], out[:3000]
    assert "WARN" not in out and "Warning" not in out and "it/s]" not in out, out[:3000]
    assert not smoke["stderr"].strip(), smoke["stderr"][-3000:]
    # The Spark JVM's lines went there too: the JVM inherits the process's stderr, not sys.stderr.
    assert "log4j" in log.read_text()
    assert "log:        outputs/smoke/logs/pipeline.log" in out
    parent = runs_by_stage(smoke["client"])["pipeline"]
    assert "logs/pipeline.log" in {f.path for f in smoke["client"].list_artifacts(parent.info.run_id, "logs")}


def test_one_parent_run_and_a_finished_child_per_stage(smoke: dict) -> None:
    runs = runs_by_stage(smoke["client"])
    assert set(runs) == {"pipeline", "prep", "sft", "dpo", "eval", "register"}
    parent = runs["pipeline"]
    for stage, run in runs.items():
        assert run.info.status == "FINISHED", stage
        if stage != "pipeline":
            assert run.data.tags["mlflow.parentRunId"] == parent.info.run_id
    assert parent.data.params["sft.args.learning_rate"] == "0.003"
    assert parent.data.params["base_model"] == "builtin:tiny"
    assert "prep.hash_key" not in parent.data.params
    assert parent.data.tags["encore.git_commit"]


def test_datasets_are_logged_with_digests(smoke: dict) -> None:
    runs = runs_by_stage(smoke["client"])
    names = {i.dataset.name for i in runs["prep"].inputs.dataset_inputs}
    assert {"pairs", "sft", "eval", "raw-responses", "raw-interactions"} <= names
    sft_inputs = runs["sft"].inputs.dataset_inputs
    assert [i.dataset.name for i in sft_inputs] == ["sft-train"] and sft_inputs[0].dataset.digest


def test_manifest_accounts_for_every_row(smoke: dict) -> None:
    manifest = json.loads((smoke["workdir"] / "outputs/smoke/prepared/manifest.json").read_text())
    for name, entry in manifest["inputs"].items():
        assert entry["rows_in"] == entry["rows_out"] + entry["rows_quarantined"], name
    assert manifest["outputs"]["pairs"]["rows"] > 0 and manifest["outputs"]["eval"]["rows"] > 0


@pytest.mark.parametrize("stage", ["sft", "dpo"])
def test_lora_weights_changed_and_base_weights_did_not(smoke: dict, stage: str) -> None:
    metrics = runs_by_stage(smoke["client"])[stage].data.metrics
    assert metrics["train/lora_b_norm"] > 0  # lora_B starts at zero
    assert metrics["train/base_max_change"] == 0.0
    assert metrics["train/final_loss"] == metrics["train/final_loss"]  # finite, not NaN
    adapter = smoke["workdir"] / f"outputs/smoke/{stage}/adapter/adapter_model.safetensors"
    with safe_open(str(adapter), "pt") as f:
        keys = list(f.keys())
        # The adapters, and the embeddings and output head the smoke recipe trains in full beside them.
        saved = {k for k in keys if "lora_" not in k}
        assert keys and saved and all("embed_tokens" in k or "lm_head" in k for k in saved)
        assert any(f.get_tensor(k).abs().sum() > 0 for k in keys if "lora_B" in k)


def test_eval_compares_base_sft_dpo(smoke: dict) -> None:
    metrics = runs_by_stage(smoke["client"])["eval"].data.metrics
    for model in ("base", "sft", "dpo"):
        for key in ("format_valid", "grounded", "fulfillment"):
            assert 0.0 <= metrics[f"eval/{model}/{key}"] <= 1.0
    report = smoke["workdir"] / "outputs/smoke/eval/report.md"
    assert "base" in report.read_text() and (report.parent / "metrics.png").stat().st_size > 0
    # Each model against the one before it, request by request (evaluation/paired.py).
    assert "## Paired differences" in report.read_text() and "| dpo − sft |" in report.read_text()


def test_the_sft_model_learned_the_answer_format_the_base_cannot_write(smoke: dict) -> None:
    # builtin:tiny has random weights: no line of its answers parses. Trained in full on the smoke data, SFT
    # learns to answer with playlist lines. What it learns beyond that depends on the split (the hash key):
    # with the recipe's default key it grounds 0.76 of its lines and fulfils 0.50; with this fixture's key
    # 0.002 and 0.10 (docs/benchmarks.md, "A smoke model that learns"), so only the format is asserted here;
    # issue 21's grounding ≥ 0.95 and fulfilment ≥ base + 0.3 are not reached reliably yet.
    metrics = runs_by_stage(smoke["client"])["eval"].data.metrics
    assert metrics["eval/base/format_parses"] == 0.0 and metrics["eval/base/fulfillment"] == 0.0
    assert metrics["eval/sft/n_requests"] >= 48
    assert metrics["eval/sft/format_parses"] >= 0.5 and metrics["eval/sft/mean_length"] >= 5
    assert metrics["eval/sft/fulfillment"] > metrics["eval/base/fulfillment"]


def test_registered_candidate_loads_in_a_fresh_process_with_the_same_playlists(smoke: dict) -> None:
    client = smoke["client"]
    version = client.get_model_version_by_alias("playlist-generator", "candidate")
    assert version.tags["base_model"] == "builtin:tiny" and version.tags["data_fingerprint"]
    assert runs_by_stage(client)["register"].data.metrics["register/roundtrip_match"] == 1.0

    import pandas as pd

    from encore.train.lora import load_policy
    from playlist.inference import PlaylistGenerator

    out = smoke["workdir"] / "outputs/smoke"
    rows = pd.read_parquet(out / "prepared/eval").sort_values("prompt_id").tail(3)
    requests = rows[["request", "history", "candidates"]]
    model, tokenizer = load_policy("builtin:tiny", [out / "sft/adapter", out / "dpo/adapter"])
    catalog = pd.read_parquet(out / "prepared/validated/catalog")
    expected = PlaylistGenerator(model, tokenizer, catalog, retrieval_k=12, max_new_tokens=192).generate(
        requests.to_dict("records")
    )
    requests_path = smoke["workdir"] / "requests.json"
    requests.to_json(requests_path, orient="records")
    script = (
        "import sys, json, mlflow, pandas as pd\n"
        "m = mlflow.pyfunc.load_model('models:/playlist-generator@candidate')\n"
        "print(json.dumps(m.predict(pd.read_json(sys.argv[1], orient='records')).to_dict('records')))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, str(requests_path)],
        env={**os.environ, "MLFLOW_TRACKING_URI": smoke["uri"], "MLFLOW_REGISTRY_URI": smoke["uri"]},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    loaded = json.loads(done.stdout.strip().splitlines()[-1])
    assert [r["track_ids"] for r in loaded] == [r["track_ids"] for r in expected]
    assert [r["completion"] for r in loaded] == [r["completion"] for r in expected]


def test_a_failing_stage_marks_its_run_failed(tmp_path: Path) -> None:
    env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'mlflow.db'}"}
    done = subprocess.run(
        [*ENCORE, "train", "dpo", str(SMOKE), "--set", f"output_dir={tmp_path}/empty"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode != 0 and "no Parquet files" in done.stderr
    client = MlflowClient(env["MLFLOW_TRACKING_URI"])
    runs = client.search_runs([client.get_experiment_by_name("encore-smoke").experiment_id])
    assert [r.info.status for r in runs] == ["FAILED"]


def test_a_stopped_stage_marks_its_run_failed(tmp_path: Path) -> None:
    """SIGTERM (`kill`, a scheduler, `timeout`) mid-stage: the run ends FAILED, not RUNNING; exit 143."""
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    env = {**os.environ, "MLFLOW_TRACKING_URI": uri}
    prep = subprocess.Popen(
        [*ENCORE, "prep", str(SMOKE), "--set", f"output_dir={tmp_path}/out"],
        cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    raw = tmp_path / "out" / "raw" / "responses.jsonl"  # simulated inside the prep run, once Spark is up
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and prep.poll() is None and not raw.exists():
        time.sleep(0.5)
    assert prep.poll() is None, "prep ended before it could be stopped"
    prep.send_signal(signal.SIGTERM)
    _, stderr = prep.communicate(timeout=120)
    assert prep.returncode == 128 + signal.SIGTERM, stderr[-3000:]
    client = MlflowClient(uri)
    (run,) = client.search_runs([client.get_experiment_by_name("encore-smoke").experiment_id])
    assert run.info.status == "FAILED"


def _texts(path: Path) -> list[str]:
    """The text content of an output file: decoded Parquet, any text file; binary weights skipped."""
    import pandas as pd

    if path.suffix == ".parquet":
        return [pd.read_parquet(path).to_json(orient="records", force_ascii=False)]
    if path.suffix in (".safetensors", ".png", ".crc") or path.name.startswith("."):
        return []
    return [path.read_bytes().decode("utf-8", errors="replace")]


def test_no_secret_or_raw_user_id_in_any_output_param_tag_or_artifact(smoke: dict) -> None:
    import sqlite3

    workdir = smoke["workdir"]
    raw = (workdir / "outputs/smoke/raw/responses.jsonl").read_text().splitlines()
    user_ids = {json.loads(line)["user_id"] for line in raw}
    assert user_ids
    texts: dict[str, str] = {}
    scanned = [p for p in (workdir / "outputs/smoke").rglob("*") if p.is_file() and "raw" not in p.parts]
    scanned += [p for p in (workdir / "mlruns").rglob("*") if p.is_file() and p.suffix != ".db"]
    for path in scanned:
        texts[str(path)] = "\n".join(_texts(path))
    # Every text cell of every table of the tracking store: params, tags, metrics, inputs, registry.
    with sqlite3.connect(workdir / "mlruns" / "mlflow.db") as db:
        tables = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        for table in tables:
            rows = db.execute(f'SELECT * FROM "{table}"').fetchall()
            texts[f"mlflow.db:{table}"] = "\n".join(str(cell) for row in rows for cell in row)
    assert any(p.endswith(".parquet") for p in texts) and "mlflow.db:params" in texts
    for where, text in texts.items():
        for name, secret in smoke["secrets"].items():
            assert secret not in text, f"{name} found in {where}"
        if "/artifacts/code/" in where:
            continue  # encore's own source, packaged with the model: its docstrings show id formats
        leaked = {u for u in user_ids if re.search(rf"(?<![\\\w]){re.escape(u)}(?!\w)", text)}
        assert not leaked, f"raw user ids {sorted(leaked)[:3]} found in {where}"


def test_no_pickle_in_the_registered_model(smoke: dict) -> None:
    client = smoke["client"]
    version = client.get_model_version_by_alias("playlist-generator", "candidate")
    import mlflow

    # `models:/<id>` resolves through the global tracking URI only, whatever `tracking_uri=` says.
    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(smoke["uri"])
    try:
        local = Path(mlflow.artifacts.download_artifacts(version.source))
    finally:
        mlflow.set_tracking_uri(previous)
    files = [p for p in local.rglob("*") if p.is_file()]
    assert any(p.suffix == ".safetensors" for p in files)
    assert not [p for p in files if p.suffix in (".pkl", ".pickle", ".bin", ".pt", ".pth", ".joblib")]

"""The flywheel's lab model takes `@champion` from the SFT model through `encore promote --min-z 2`, not the reverse.

The whole CPU lab (`recipes/smoke/flywheel.yaml`: prep, SFT, two rounds and the control, ~17 min on 2
cores) in a fresh directory with its own store: the SFT model is registered and made champion, the
flywheel registers its final policy as candidate, and the gate evaluates both versions itself on the
held-out eval rows. Slow tier (never in CI, where the cut-down loop of test_flywheel.py runs); run with
``pytest -m slow tests/integration/test_flywheel_promote.py``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from mlflow import MlflowClient

ROOT = Path(__file__).resolve().parents[2]
LAB = ROOT / "recipes" / "smoke" / "flywheel.yaml"
NAME = "playlist-generator"

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> dict:
    workdir = tmp_path_factory.mktemp("flywheel-lab")
    uri = f"sqlite:///{workdir / 'mlflow.db'}"
    env = {**os.environ, "MLFLOW_TRACKING_URI": uri, "HF_HUB_OFFLINE": "1"}
    out = ["--set", f"output_dir={workdir / 'out'}"]

    def encore(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "encore.cli", *args], cwd=workdir, env=env, capture_output=True, text=True
        )

    steps = [
        ("prep", str(LAB), *out),
        ("train", "sft", str(LAB), *out),
        # The SFT model alone (no preference stage), made champion by registering it under that alias.
        (
            "register",
            str(LAB),
            *out,
            "--set",
            "dpo.enabled=false",
            "--set",
            "eval.models=[base, sft]",
            "--set",
            "register.alias=champion",
        ),
        ("flywheel", str(LAB), *out),  # registers the final round's policy as `candidate`
    ]
    for args in steps:
        done = encore(*args)
        assert done.returncode == 0, (
            f"encore {' '.join(args[:2])}\n" + done.stdout[-3000:] + done.stderr[-5000:]
        )
    return {"workdir": workdir, "uri": uri, "encore": encore, "client": MlflowClient(uri, uri)}


def _promote(lab: dict, from_: str, report: str) -> tuple[int, dict]:
    path = lab["workdir"] / report
    done = lab["encore"](
        "promote", NAME, "--from", from_, "--to", "champion", "--min-z", "2",
        "--tracking-uri", lab["uri"], "--report", str(path),
    )  # fmt: skip
    assert done.returncode in (0, 1), done.stdout[-3000:] + done.stderr[-5000:]
    return done.returncode, json.loads(path.read_text())


def test_the_flywheel_model_takes_champion_from_sft_and_sft_cannot_take_it_back(lab: dict) -> None:
    client = lab["client"]
    sft = client.get_model_version_by_alias(NAME, "champion")
    flywheel = client.get_model_version_by_alias(NAME, "candidate")
    assert sft.tags["stages"] == "sft"
    assert flywheel.tags["stages"] == "sft+dpo-round-1+dpo-round-2"

    code, report = _promote(lab, "candidate", "forward.json")
    assert code == 0 and report["promoted"], report["reasons"]
    assert report["n_requests"] >= 300
    assert report["paired"]["mean"] >= 2 * report["paired"]["stderr"] > 0
    assert client.get_model_version_by_alias(NAME, "champion").version == flywheel.version
    assert client.get_model_version_by_alias(NAME, "previous-champion").version == sft.version

    code, report = _promote(lab, "previous-champion", "reverse.json")
    assert code == 1 and not report["promoted"]
    assert report["paired"]["mean"] < 0
    assert client.get_model_version_by_alias(NAME, "champion").version == flywheel.version

"""Integration fixtures: one smoke pipeline run per test session, shared by the pipeline, notebook and browser tests.

The smoke run is the costliest thing CI does (minutes on 2 cores), so every test that needs a
finished run (MLflow store, prepared data, adapters, eval report) reads this one.

CI runs these tests on two pytest-xdist workers (`-n 2`): most of them leave one of the two cores
idle (one Spark core, one Python thread). Each module runs whole on one worker (its module fixtures
start servers and clusters once); the modules that read the smoke run share one worker
(`tests/conftest.py`); the prepared smoke data is built once for both workers (:func:`prepared_smoke`).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from filelock import FileLock
from mlflow import MlflowClient

ROOT = Path(__file__).resolve().parents[2]
SMOKE = ROOT / "recipes" / "smoke" / "pipeline.yaml"
# Fake credentials put in the run's environment: none of them may reach any output, param, tag or artifact.
SECRETS = {
    "HF_TOKEN": "hf_encoreTestSecretToken0001",
    "MLFLOW_TRACKING_TOKEN": "mlflow-test-secret-token-0002",
    "ENCORE_HASH_KEY": "encore-test-secret-hash-key-0003",
}


@pytest.fixture(scope="session")
def smoke(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """One smoke pipeline run in a fresh working directory with the default (relative sqlite) store.

    Returns ``workdir`` (outputs under ``outputs/smoke``, the store under ``mlruns``), the run's
    ``stdout`` and ``stderr``, an MLflow ``client`` on the store, its ``uri`` and the ``secrets`` it ran with.
    """
    workdir = tmp_path_factory.mktemp("smoke")
    env = {k: v for k, v in os.environ.items() if k not in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")}
    env.update(SECRETS)
    done = subprocess.run(
        [sys.executable, "-m", "encore.cli", "pipeline", str(SMOKE)],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        timeout=1800,  # ~4 min on a quiet 2-core machine; 17 min was seen with other jobs running
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-5000:]
    uri = f"sqlite:///{workdir / 'mlruns' / 'mlflow.db'}"
    return {
        "workdir": workdir,
        "stdout": done.stdout,
        "stderr": done.stderr,
        "client": MlflowClient(uri, uri),
        "uri": uri,
        "secrets": dict(SECRETS),
    }


@pytest.fixture(scope="session")
def prepared_smoke(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`encore prep` of the smoke recipe with 20 simulated users, once per session: the `prepared/` directory.

    For tests that train on prepared data (resume, launchers, a full disk) and need no pipeline run.
    Treat it as read-only: link it into an output directory (`out/prepared`), never write to it.
    Under xdist the first worker to need it builds it in the directory all workers share; the others
    wait for it, and build it again only if that failed.
    """
    if "PYTEST_XDIST_WORKER" not in os.environ:  # one process: nobody to share it with
        return _prepare_smoke(tmp_path_factory.mktemp("smoke-prepared-20-users"))
    out = tmp_path_factory.getbasetemp().parent / "smoke-prepared-20-users"
    with FileLock(f"{out}.lock"):
        if not (out / "prepared" / "manifest.json").exists():
            shutil.rmtree(out, ignore_errors=True)
            out.mkdir()
            _prepare_smoke(out)
    return out / "prepared"


def _prepare_smoke(out: Path) -> Path:
    env = {k: v for k, v in os.environ.items() if k not in ("MLFLOW_TRACKING_URI", "ENCORE_RESUME")}
    overrides = ["--set", "data.simulator.n_users=20", "--set", "prep.spark_master=local[1]"]
    overrides += ["--set", f"output_dir={out}", "--set", f"tracking.uri=sqlite:///{out / 'mlflow.db'}"]
    done = subprocess.run(
        [sys.executable, "-m", "encore.cli", "prep", str(SMOKE), *overrides],
        cwd=out,
        env=env,
        capture_output=True,
        text=True,
        timeout=1200,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-5000:]
    return out / "prepared"


@pytest.fixture(scope="session")
def test_artifacts(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where tests leave files for people to look at (screenshots, executed notebooks).

    ``$ENCORE_TEST_ARTIFACTS`` when set (CI uploads it), else a fresh temporary directory.
    """
    chosen = os.environ.get("ENCORE_TEST_ARTIFACTS")
    path = Path(chosen) if chosen else tmp_path_factory.mktemp("artifacts")
    path.mkdir(parents=True, exist_ok=True)
    return path

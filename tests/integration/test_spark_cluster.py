"""The data_prep job on a real Spark standalone cluster (scripts/spark-cluster.sh) matches local mode.

One master and two 1-core workers on 127.0.0.1, started from the pyspark package's ``spark-class``;
the job goes through ``spark-submit --master spark://…`` exactly as on a remote cluster. The second
test SIGKILLs a worker mid-job (issue 6): the job must still finish with the same outputs.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyspark
import pytest

from playlist.simulator import simulate

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "spark-cluster.sh"
SPARK_SUBMIT = Path(pyspark.__file__).parent / "bin" / "spark-submit"
# JVM options of the driver and executors: UTC, as data_prep.session sets it (the C1-only JIT comes
# with every JVM of the test session, tests/conftest.py).
JVM_OPTIONS = "-Duser.timezone=UTC"
KEY = "k"
JOB_TIMEOUT = 1800  # seconds: a hang guard only (never a timing assert); a busy 2-core box is very slow


@dataclass
class Cluster:
    """A cluster started by the script: master URL, master web UI, the script's state dir."""

    url: str
    webui: str
    state: Path

    def summary(self) -> dict[str, Any]:
        """The master's /json/ view: workers, active and completed applications."""
        with urllib.request.urlopen(f"{self.webui}/json/", timeout=10) as response:
            return json.load(response)

    def alive_workers(self) -> int:
        return sum(1 for w in self.summary()["workers"] if w["state"] == "ALIVE")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _env(**extra: str) -> dict[str, str]:
    # The driver (spark-submit starts it) and the executors' Python workers run this venv's python,
    # which imports data_prep and encore (installed editable): no --py-files needed on one machine.
    return {
        **os.environ,
        "PYSPARK_PYTHON": sys.executable,
        "PYSPARK_DRIVER_PYTHON": sys.executable,
        "SPARK_LOCAL_IP": "127.0.0.1",
        **extra,
    }


def _job_args(raw: dict[str, Path], out: Path) -> list[str]:
    return [
        *("--responses", str(raw["responses"]), "--interactions", str(raw["interactions"])),
        *("--catalog", str(raw["catalog"]), "--intents", str(raw["intents"])),
        *("--out", str(out), "--hash-key", KEY),
    ]


def _submit_cmd(cluster: Cluster, raw: dict[str, Path], out: Path) -> list[str]:
    return [
        str(SPARK_SUBMIT),
        *("--master", cluster.url),
        # Wait for both executors before the first task, so the work (and the data) spreads over both.
        *("--conf", "spark.scheduler.minRegisteredResourcesRatio=1.0"),
        *("--conf", "spark.scheduler.maxRegisteredResourcesWaitingTime=300s"),
        # Two 1-core executors: as many shuffle partitions as local[2] (the session's default of 8
        # for a cluster master quadruples the tasks of a job that is all small stages).
        *("--conf", "spark.sql.shuffle.partitions=2"),
        *("--conf", f"spark.driver.extraJavaOptions={JVM_OPTIONS}"),
        *("--conf", f"spark.executor.extraJavaOptions={JVM_OPTIONS}"),
        str(ROOT / "data_prep" / "job.py"),
        *_job_args(raw, out),
    ]


def _errors(text: str, lines: int = 25) -> str:
    """The error lines of a Spark log (a JVM stack trace's frames are noise here), else its tail."""
    found = [line for line in text.splitlines() if re.search(r" ERROR |Exception|Error:", line)]
    return "\n".join(found[:lines] or text.strip().splitlines()[-lines:])


def _outputs(out: Path) -> dict[str, tuple[int, str]]:
    manifest = json.loads((out / "manifest.json").read_text())
    return {name: (entry["rows"], entry["fingerprint"]) for name, entry in manifest["outputs"].items()}


@pytest.fixture(scope="module")
def raw(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return simulate(tmp_path_factory.mktemp("raw"), seed=0, n_users=20, sessions_per_user=2)


@pytest.fixture(scope="module")
def local_outputs(
    raw: dict[str, Path], tmp_path_factory: pytest.TempPathFactory
) -> dict[str, tuple[int, str]]:
    out = tmp_path_factory.mktemp("local") / "prepared"
    cmd = [sys.executable, "-m", "data_prep.job", *_job_args(raw, out), "--master", "local[2]"]
    proc = subprocess.run(cmd, env=_env(), capture_output=True, text=True, timeout=JOB_TIMEOUT, cwd=ROOT)
    assert proc.returncode == 0, f"local run failed:\n{_errors(proc.stderr)}"
    return _outputs(out)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    state = tmp_path_factory.mktemp("spark-cluster")
    port, ui_port = _free_port(), _free_port()
    env = _env(
        SPARK_CLUSTER_DIR=str(state),
        SPARK_MASTER_PORT=str(port),
        SPARK_MASTER_WEBUI_PORT=str(ui_port),
        SPARK_WORKER_WEBUI_PORT="0",  # any free port
        SPARK_CLUSTER_TIMEOUT="300",  # a busy 2-core box takes minutes to start the three JVMs
        PYTHON=sys.executable,
    )
    try:
        start = subprocess.run(
            ["bash", str(SCRIPT), "start", "--workers", "2"],
            env=env,
            capture_output=True,
            text=True,
            timeout=700,
        )
        if start.returncode != 0:
            pytest.fail(f"spark-cluster.sh start failed:\n{start.stdout}\n{start.stderr}")
        yield Cluster(url=f"spark://127.0.0.1:{port}", webui=f"http://127.0.0.1:{ui_port}", state=state)
    finally:
        subprocess.run(["bash", str(SCRIPT), "stop"], env=env, capture_output=True, timeout=120)


def test_job_on_standalone_cluster_matches_local_mode(
    cluster: Cluster, raw: dict[str, Path], local_outputs: dict[str, tuple[int, str]], tmp_path: Path
) -> None:
    out = tmp_path / "prepared"
    proc = subprocess.run(
        _submit_cmd(cluster, raw, out),
        env=_env(),
        capture_output=True,
        text=True,
        timeout=JOB_TIMEOUT,
        cwd=ROOT,
    )
    assert proc.returncode == 0, f"spark-submit failed:\n{_errors(proc.stderr)}"

    assert _outputs(out) == local_outputs
    apps = cluster.summary()["completedapps"]
    assert [app["name"] for app in apps] == ["encore-data-prep"], "the job did not run on the cluster"
    # Both workers ran an executor for it: <state>/worker-<i>/<app id>/<executor id>/stderr.
    workers = {p.relative_to(cluster.state).parts[0] for p in cluster.state.glob("worker-*/app-*/*/stderr")}
    assert workers == {"worker-1", "worker-2"}


def test_job_survives_losing_a_worker(
    cluster: Cluster, raw: dict[str, Path], local_outputs: dict[str, tuple[int, str]], tmp_path: Path
) -> None:
    assert cluster.alive_workers() == 2, "needs the fixture's two workers alive (runs after the first test)"
    victim_pid = int((cluster.state / "worker-2.pid").read_text())
    out = tmp_path / "prepared"
    log = tmp_path / "spark-submit.log"
    with log.open("w") as sink:
        job = subprocess.Popen(
            _submit_cmd(cluster, raw, out), env=_env(), stdout=sink, stderr=subprocess.STDOUT, cwd=ROOT
        )
        try:
            # Kill worker-2 (its executor exits with it) once the job starts writing its outputs into
            # the hidden temp dir next to --out: every checkpoint is materialised by then, spread over
            # both executors, and all the writes, counts and fingerprints still need them.
            deadline = time.monotonic() + JOB_TIMEOUT
            while job.poll() is None and time.monotonic() < deadline:
                if any(tmp_path.glob(".prepared.tmp-*")):
                    os.kill(victim_pid, signal.SIGKILL)
                    break
                time.sleep(0.2)
            else:
                state = "timed out" if job.returncode is None else f"ended with rc={job.returncode}"
                pytest.fail(
                    f"the job {state} before writing any output; worker-2 was never killed:\n{_errors(log.read_text())}"
                )
            rc = job.wait(timeout=JOB_TIMEOUT)
        finally:
            if job.poll() is None:
                job.kill()
                job.wait()

    assert cluster.alive_workers() == 1, "the master still counts the killed worker as alive"
    text = log.read_text(errors="replace")
    lost = re.search(r"Checkpoint block \S+ not found[^\n]*", text)
    why = (
        f"\nIt lost a checkpointed partition: {lost[0]}\nlocalCheckpoint() keeps each partition only on the "
        "executor that computed it; replicate it (storageLevel=StorageLevel.DISK_ONLY_2) or checkpoint() "
        "to a checkpoint dir (docs/scaling.md, 'Losing an executor')."
        if lost
        else ""
    )
    assert rc == 0, f"the job failed after worker-2 was SIGKILLed.{why}\n{_errors(text)}"
    assert _outputs(out) == local_outputs

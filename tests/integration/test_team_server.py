"""The team MLflow server (scripts/team-server.sh: PostgreSQL + `mlflow server`) under real pipelines.

One module-scoped server on free ports in a temporary directory, always stopped. Tests: one smoke
pipeline alone; four at once (every metric point stored, one registered version each); the same four
on one shared SQLite file; the server down before a pipeline starts; the server killed and restarted
while a pipeline trains. The pipelines are the smoke recipe cut down by `FAST` so that four fit on
2 CPU cores; what each stores is compared with what the same recipe stores when it runs alone.
"""

from __future__ import annotations

import glob
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from mlflow import MlflowClient
from mlflow.entities import Run

# Not yet run to completion in CI (written at the end of session 2 on a heavily loaded machine):
# kept out of `make test` until a quiet run passes, then switch this back to `pytest.mark.integration`.
pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "team-server.sh"
SMOKE = ROOT / "recipes" / "smoke" / "pipeline.yaml"
ENCORE = [sys.executable, "-m", "encore.cli", "pipeline", str(SMOKE)]
TIMEOUT = 1200  # seconds; a hang guard only (CI shares 2 cores), never a timing assert
STAGES = {"pipeline", "prep", "sft", "dpo", "eval", "register"}
MAX_STEPS, LOGGING_STEPS = 4, 1
# The smoke recipe, smaller: a few logged steps per trainer, one model evaluated on 4 requests.
FAST = [
    f"sft.args.max_steps={MAX_STEPS}",
    f"sft.args.logging_steps={LOGGING_STEPS}",
    f"dpo.args.max_steps={MAX_STEPS}",
    f"dpo.args.logging_steps={LOGGING_STEPS}",
    "eval.models=[dpo]",
    "eval.max_requests=4",
    "eval.max_new_tokens=16",
    "register.max_new_tokens=16",
]


@dataclass
class Server:
    uri: str
    env: dict[str, str]
    dir: Path

    def script(self, command: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["bash", str(SCRIPT), command], env=self.env, capture_output=True, text=True, timeout=300
        )

    def kill_mlflow(self) -> None:
        """SIGKILL the whole `mlflow server` process group (a crash, not a clean stop); PostgreSQL stays."""
        pid = int((self.dir / "mlflow.pid").read_text().split()[0])
        os.killpg(pid, signal.SIGKILL)


@dataclass
class Pipeline:
    out: Path
    proc: subprocess.Popen[bytes]

    def wait(self) -> tuple[int, str]:
        code = self.proc.wait(timeout=TIMEOUT)
        return code, (self.out.parent / "pipeline.log").read_text(errors="replace")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def launch(workdir: Path, env: dict[str, str], *overrides: str) -> Pipeline:
    """Start `encore pipeline` on the cut-down smoke recipe in its own directory; output in `<workdir>/out`.

    `env` is added to this process's environment without its `MLFLOW_TRACKING_URI`.
    """
    workdir.mkdir(parents=True, exist_ok=True)
    out = workdir / "out"
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"} | env
    log = (workdir / "pipeline.log").open("wb")
    proc = subprocess.Popen(
        [*ENCORE, "--set", f"output_dir={out}", *(f"--set={o}" for o in [*FAST, *overrides])],
        cwd=workdir,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    log.close()
    return Pipeline(out, proc)


def runs_of(client: MlflowClient, experiment: str, out: Path) -> dict[str, Run]:
    """The pipeline run that wrote to `out` (its recipe params name it) and its child runs, by stage."""
    exp = client.get_experiment_by_name(experiment)
    assert exp is not None, f"experiment {experiment} missing"
    parents = client.search_runs([exp.experiment_id], f"params.output_dir = '{out}'")
    assert len(parents) == 1, f"{len(parents)} pipeline runs for {out}"
    parent = parents[0]
    children = client.search_runs([exp.experiment_id], f"tags.mlflow.parentRunId = '{parent.info.run_id}'")
    return {"pipeline": parent, **{r.data.tags["encore.stage"]: r for r in children}}


def metric_counts(client: MlflowClient, runs: dict[str, Run]) -> dict[str, int]:
    """`<stage>:<metric>` → number of points stored (the whole history, not only the latest value)."""
    return {
        f"{stage}:{key}": len(client.get_metric_history(run.info.run_id, key))
        for stage, run in runs.items()
        for key in run.data.metrics
    }


@pytest.fixture(scope="module")
def server() -> Iterator[Server]:
    """The team server on free ports; PostgreSQL and MLflow are stopped whatever the tests do."""
    if not glob.glob("/usr/lib/postgresql/*/bin/pg_ctl") and not shutil.which("pg_ctl"):
        pytest.skip("PostgreSQL server binaries not installed (Debian/Ubuntu: apt-get install postgresql)")
    # Not tmp_path: under root PostgreSQL runs as `postgres`, which may not enter pytest's 0700 base dir.
    base = Path(tempfile.mkdtemp(prefix="encore-team-server-"))
    base.chmod(0o755)
    env = {
        **os.environ,
        "ENCORE_SERVER_DIR": str(base),
        "ENCORE_PG_PORT": str(_free_port()),
        "ENCORE_MLFLOW_PORT": str(_free_port()),
    }
    server = Server("", env, base)
    try:
        done = server.script("start")
        assert done.returncode == 0, done.stdout + done.stderr
        found = re.search(r"^export MLFLOW_TRACKING_URI=(\S+)$", done.stdout, re.MULTILINE)
        assert found, done.stdout
        server.uri = found.group(1)
        yield server
    finally:
        stopped = server.script("stop")
        shutil.rmtree(base, ignore_errors=True)
        assert stopped.returncode == 0, stopped.stdout + stopped.stderr


@pytest.fixture(scope="module")
def solo(server: Server, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """One cut-down smoke pipeline alone on the team server: the reference for the load test."""
    workdir = tmp_path_factory.mktemp("solo")
    experiment = "team-solo"
    start = time.monotonic()
    code, log = launch(
        workdir,
        {"MLFLOW_TRACKING_URI": server.uri},
        f"tracking.experiment={experiment}",
        "register.name=team-solo",
    ).wait()
    seconds = time.monotonic() - start
    assert code == 0, log[-5000:]
    client = MlflowClient(server.uri, server.uri)
    runs = runs_of(client, experiment, workdir / "out")
    return {"runs": runs, "counts": metric_counts(client, runs), "seconds": seconds, "workdir": workdir}


def test_server_status_and_script_usage(server: Server) -> None:
    status = server.script("status")
    assert status.returncode == 0, status.stdout + status.stderr
    assert "postgres: running" in status.stdout and "mlflow:   running" in status.stdout
    assert server.script("restart").returncode == 2  # unknown command: usage, nothing started


def test_smoke_pipeline_on_the_team_server(server: Server, solo: dict) -> None:
    runs = solo["runs"]
    assert set(runs) == STAGES
    for stage, run in runs.items():
        assert run.info.status == "FINISHED", stage
    assert runs["prep"].info.artifact_uri.startswith("mlflow-artifacts:"), "artifacts bypass the server"
    # Every logged step is stored: the recipe logs the loss at every `logging_steps` of `max_steps`.
    for stage in ("sft", "dpo"):
        assert solo["counts"][f"{stage}:train/loss"] == MAX_STEPS // LOGGING_STEPS

    client = MlflowClient(server.uri, server.uri)
    version = client.get_model_version_by_alias("team-solo", "candidate")
    assert version.run_id == runs["register"].info.run_id
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, mlflow, pandas as pd\n"
            "m = mlflow.pyfunc.load_model(sys.argv[1])\n"
            "out = m.predict(pd.DataFrame({'request': ['mellow folk for a rainy night']}))\n"
            "print(len(out), list(out.columns))\n",
            f"models:/team-solo/{version.version}",
        ],
        env={**os.environ, "MLFLOW_TRACKING_URI": server.uri},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip().splitlines()[-1].startswith("1 ['request', 'track_ids'")


def four_at_once(root: Path, env: dict[str, str], name: str, *overrides: str) -> tuple[list[Pipeline], float]:
    """Four cut-down smoke pipelines started together: one experiment and one registered model, as a team."""
    start = time.monotonic()
    pipelines = [
        launch(root / f"p{i}", env, f"tracking.experiment={name}", f"register.name={name}", *overrides)
        for i in range(4)
    ]
    results = [p.wait() for p in pipelines]
    for code, log in results:
        assert code == 0, log[-5000:]
    return pipelines, time.monotonic() - start


def check_everything_stored(client: MlflowClient, pipelines: list[Pipeline], name: str, solo: dict) -> None:
    """Every run FINISHED with as many points per metric as the pipeline stores alone; one version each."""
    register_runs = set()
    for p in pipelines:
        runs = runs_of(client, name, p.out)
        assert set(runs) == STAGES
        assert all(r.info.status == "FINISHED" for r in runs.values())
        assert metric_counts(client, runs) == solo["counts"], p.out
        register_runs.add(runs["register"].info.run_id)

    versions = client.search_model_versions(f"name = '{name}'")
    assert sorted(int(v.version) for v in versions) == [1, 2, 3, 4]
    assert {v.run_id for v in versions} == register_runs  # each version from its own run …
    for v in versions:  # … and its files are that run's logged model
        source = v.source or ""
        assert source.startswith("models:/m-"), source
        assert client.get_logged_model(source.removeprefix("models:/")).source_run_id == v.run_id
        assert v.tags["run_id"] == v.run_id


def test_four_pipelines_at_once_store_everything(
    server: Server, solo: dict, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """What a team does: the same recipe, one experiment, one registered model, four people at once."""
    pipelines, seconds = four_at_once(tmp_path, {"MLFLOW_TRACKING_URI": server.uri}, "team-load")
    check_everything_stored(MlflowClient(server.uri, server.uri), pipelines, "team-load", solo)
    with capsys.disabled():
        print(f"\nteam server: 4 pipelines at once {seconds:.0f} s, one alone {solo['seconds']:.0f} s")


def test_four_pipelines_on_one_sqlite_file(
    solo: dict, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The embedded default store shared by four pipelines on one machine: all of them must complete.

    Without a lock in `encore.tracking.setup`, all four create and migrate the new file's schema at
    once and crash (`table _alembic_tmp_… already exists`, `duplicate column name: step`), leaving a
    half-migrated file that no later run can open (issue 6).
    """
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    pipelines, seconds = four_at_once(tmp_path, {}, "team-sqlite", f"tracking.uri={uri}")
    check_everything_stored(MlflowClient(uri, uri), pipelines, "team-sqlite", solo)
    with capsys.disabled():
        print(f"\nsqlite: 4 pipelines at once {seconds:.0f} s")


def test_server_down_at_start_fails_at_once_with_one_line(tmp_path: Path) -> None:
    """Nothing listens at the URI: the pipeline must stop before any work, saying which server is missing.

    Today MLflow's client retries the first request 7 times with backoff (~4 minutes of silence) and
    the CLI then prints a ~450-line traceback; the preflight proposed for `encore.tracking.setup`
    (issue 6) turns that into one line within seconds.
    """
    uri = f"http://127.0.0.1:{_free_port()}"  # a port nobody listens on
    code, log = launch(tmp_path, {"MLFLOW_TRACKING_URI": uri}).wait()
    assert code != 0
    assert not list((tmp_path / "out").glob("*")), "work started without a tracking server"
    assert "Traceback" not in log, log[-3000:]
    assert any(uri in line and "tracking" in line.lower() for line in log.splitlines()), log[-3000:]


def test_server_killed_during_training_and_restarted(server: Server, solo: dict, tmp_path: Path) -> None:
    """The MLflow server crashes right after prep and is back some seconds later: nothing is lost.

    MLflow's client retries each request with backoff (0, 4, 8, 16, 32, 64, 120 s), so a restart
    within about 4 minutes delays the pipeline but must neither fail it nor drop a metric point.
    """
    pipeline = launch(
        tmp_path,
        {"MLFLOW_TRACKING_URI": server.uri},
        "tracking.experiment=team-fault",
        "register.name=team-fault",
    )
    client = MlflowClient(server.uri, server.uri)
    deadline = time.monotonic() + TIMEOUT
    while not _prep_finished(client, "team-fault", pipeline.out):
        assert pipeline.proc.poll() is None, pipeline.wait()[1][-5000:]
        assert time.monotonic() < deadline, "prep did not finish"
        time.sleep(1)
    server.kill_mlflow()
    time.sleep(5)
    restarted = server.script("start")
    assert restarted.returncode == 0, restarted.stdout + restarted.stderr

    code, log = pipeline.wait()
    assert code == 0, log[-5000:]
    runs = runs_of(client, "team-fault", pipeline.out)
    assert all(r.info.status == "FINISHED" for r in runs.values())
    assert metric_counts(client, runs) == solo["counts"]
    version = client.get_model_version_by_alias("team-fault", "candidate")
    assert version.run_id == runs["register"].info.run_id


def _prep_finished(client: MlflowClient, experiment: str, out: Path) -> bool:
    """Whether the pipeline writing to `out` has a FINISHED prep run (False while it has none yet)."""
    exp = client.get_experiment_by_name(experiment)
    if exp is None:
        return False
    parents = client.search_runs([exp.experiment_id], f"params.output_dir = '{out}'")
    if not parents:
        return False
    prep = client.search_runs(
        [exp.experiment_id],
        f"tags.mlflow.parentRunId = '{parents[0].info.run_id}' and tags.`encore.stage` = 'prep'",
    )
    return bool(prep) and prep[0].info.status == "FINISHED"

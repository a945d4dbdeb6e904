"""The team MLflow server (scripts/team-server.sh: PostgreSQL + `mlflow server`) under real runs.

One module-scoped server on free ports in a temporary directory, always stopped. In CI: the script
itself, four cut-down smoke pipelines at once on the server (one seed each, one experiment, one
registered model, as a team would), a pipeline started against a server that is down, the server
killed and restarted while a training stage logs, and four trainings at once on one new SQLite file.
By hand (`slow`: CI's 30 minutes do not hold it too): four whole pipelines at once on one new SQLite
file. What each of four pipelines stores is compared with the other three and with what the recipe
says it logs (`MAX_STEPS // LOGGING_STEPS` points per training metric).
"""

from __future__ import annotations

import glob
import json
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

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "team-server.sh"
SMOKE = ROOT / "recipes" / "smoke" / "pipeline.yaml"
ENCORE = [sys.executable, "-m", "encore.cli"]
TIMEOUT = 1500  # seconds; a hang guard only (CI shares 2 cores), never a timing assert
STAGES = {"pipeline", "prep", "sft", "dpo", "eval", "register"}
MAX_STEPS, LOGGING_STEPS = 2, 1
TRAIN_POINTS = list(range(LOGGING_STEPS, MAX_STEPS + 1, LOGGING_STEPS))  # the steps each loss is logged at
# The smoke recipe, smaller, so that four fit on 2 CPU cores at once: little data, one Spark core,
# two logged steps per trainer, one model evaluated on 2 requests.
FAST = [
    "prep.spark_master=local[1]",
    "data.simulator.n_users=24",
    "data.simulator.sessions_per_user=2",
    f"sft.args.max_steps={MAX_STEPS}",
    f"sft.args.logging_steps={LOGGING_STEPS}",
    "sft.args.per_device_train_batch_size=4",
    f"dpo.args.max_steps={MAX_STEPS}",
    f"dpo.args.logging_steps={LOGGING_STEPS}",
    "dpo.args.per_device_train_batch_size=4",
    "eval.models=[dpo]",
    "eval.max_requests=2",
    "eval.max_new_tokens=8",
    "register.max_new_tokens=8",
]
# Four processes on 2 cores: one torch thread each instead of four processes fighting over two.
ONE_THREAD = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


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
        return code, (self.out.parent / "encore.log").read_text(errors="replace")


@dataclass
class Team:
    """Four pipelines that ran at once on one store, under one experiment and one registered model."""

    name: str
    client: MlflowClient
    pipelines: list[Pipeline]
    runs: list[dict[str, Run]]
    seconds: float


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def launch(workdir: Path, env: dict[str, str], command: list[str], *overrides: str) -> Pipeline:
    """Start an encore command on the cut-down smoke recipe in its own directory; output in `<workdir>/out`.

    `env` is added to this process's environment without its `MLFLOW_TRACKING_URI`.
    """
    workdir.mkdir(parents=True, exist_ok=True)
    out = workdir / "out"
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"} | env
    with (workdir / "encore.log").open("wb") as log:
        proc = subprocess.Popen(
            [
                *ENCORE,
                *command,
                str(SMOKE),
                f"--set=output_dir={out}",
                *(f"--set={o}" for o in [*FAST, *overrides]),
            ],
            cwd=workdir,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
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


def metric_steps(client: MlflowClient, runs: dict[str, Run]) -> dict[str, list[int]]:
    """`<stage>:<metric>` → the steps of every point stored (the whole history, not only the latest value)."""
    return {
        f"{stage}:{key}": sorted(m.step for m in client.get_metric_history(run.info.run_id, key))
        for stage, run in runs.items()
        for key in run.data.metrics
    }


def four_at_once(root: Path, uri: str, name: str) -> Team:
    """Four cut-down smoke pipelines started together, one seed each: one experiment, one registered model."""
    env = {**ONE_THREAD, "MLFLOW_TRACKING_URI": uri}
    start = time.monotonic()
    pipelines = [
        launch(
            root / f"p{i}",
            env,
            ["pipeline"],
            f"seed={i}",
            f"tracking.experiment={name}",
            f"register.name={name}",
        )
        for i in range(4)
    ]
    for p in pipelines:
        code, log = p.wait()
        assert code == 0, log[-5000:]
    seconds = time.monotonic() - start
    client = MlflowClient(uri, uri)
    return Team(name, client, pipelines, [runs_of(client, name, p.out) for p in pipelines], seconds)


def check_everything_stored(team: Team) -> None:
    """Every run FINISHED; every metric point stored; one distinct version per pipeline, from its own run.

    The training stages log the same metrics at the same steps whatever the data (each pipeline has
    its own seed); the other stages log each metric once, and prep one per count of its manifest.
    """
    steps = [metric_steps(team.client, runs) for runs in team.runs]
    for p, runs, stored in zip(team.pipelines, team.runs, steps, strict=True):
        assert set(runs) == STAGES
        assert {stage: r.info.status for stage, r in runs.items()} == dict.fromkeys(STAGES, "FINISHED")
        for stage in ("sft", "dpo"):  # a point at every `logging_steps` of `max_steps`, none twice
            assert stored[f"{stage}:train/loss"] == TRAIN_POINTS, stage
            assert stored[f"{stage}:train/epoch"] == [*TRAIN_POINTS, MAX_STEPS], stage  # + the final log
        once = {k: v for k, v in stored.items() if not k.startswith(("sft:", "dpo:"))}
        assert all(v == [0] for v in once.values()), {k: v for k, v in once.items() if v != [0]}
        manifest = json.loads((p.out / "prepared" / "manifest.json").read_text())
        assert sum(k.startswith("prep:") for k in stored) == _prep_metric_count(manifest)
    training = [{k: v for k, v in s.items() if k.startswith(("sft:", "dpo:"))} for s in steps]
    assert all(t == training[0] for t in training[1:]), "the training stages stored different metric points"

    register_runs = {runs["register"].info.run_id for runs in team.runs}
    versions = team.client.search_model_versions(f"name = '{team.name}'")
    assert sorted(int(v.version) for v in versions) == [1, 2, 3, 4]
    assert {v.run_id for v in versions} == register_runs  # each version from its own run …
    for v in versions:  # … and its files are that run's logged model
        source = v.source or ""
        assert source.startswith("models:/m-"), source
        assert team.client.get_logged_model(source.removeprefix("models:/")).source_run_id == v.run_id
    for runs in team.runs:  # the register stage loaded its own version in a fresh process and matched it
        assert runs["register"].data.metrics["register/roundtrip_match"] == 1.0


def _prep_metric_count(manifest: dict) -> int:
    """How many `prep/…` metrics `encore.tracking.log_manifest_metrics` and the prep stage log for it."""
    inputs = manifest["inputs"].values()
    return (
        3 * len(inputs)  # rows_in, rows_out, rows_quarantined
        + sum(len(entry.get("quarantined_by_reason", {})) for entry in inputs)
        + len(manifest["outputs"])
        + len(manifest.get("strategy_counts", {}))
        + 1  # prep/requests_masked
    )


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
    # Not ours, though named like ours: `stop` must leave it alone.
    decoy = subprocess.Popen(
        ["bash", "-c", f"exec -a 'mlflow server --port {env['ENCORE_MLFLOW_PORT']}' sleep infinity"]
    )
    try:
        done = server.script("start")
        assert done.returncode == 0, done.stdout + done.stderr
        found = re.search(r"^export MLFLOW_TRACKING_URI=(\S+)$", done.stdout, re.MULTILINE)
        assert found, done.stdout
        server.uri = found.group(1)
        yield server
    finally:
        mlflow_group = _recorded_group(base)
        stopped = server.script("stop")
        left = subprocess.run(["pgrep", "-f", str(base)], capture_output=True, text=True).stdout.split()
        decoy_alive = decoy.poll() is None
        decoy.kill()
        decoy.wait()
        shutil.rmtree(base, ignore_errors=True)
        assert stopped.returncode == 0, stopped.stdout + stopped.stderr
        assert not left, f"processes left running after stop: {left}"
        assert mlflow_group is None or not _group_alive(mlflow_group), "mlflow server workers left running"
        assert decoy_alive, "stop killed a process it had not started"


def _recorded_group(base: Path) -> int | None:
    pidfile = base / "mlflow.pid"
    return int(pidfile.read_text().split()[0]) if pidfile.exists() else None


def _group_alive(group: int) -> bool:
    try:
        os.killpg(group, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.fixture(scope="module")
def team(server: Server, tmp_path_factory: pytest.TempPathFactory) -> Team:
    """What a team does: the same recipe, one experiment, one registered model, four people at once."""
    return four_at_once(tmp_path_factory.mktemp("team"), server.uri, "team-load")


def test_server_status_and_script_usage(server: Server) -> None:
    status = server.script("status")
    assert status.returncode == 0, status.stdout + status.stderr
    assert "postgres: running" in status.stdout and "mlflow:   running" in status.stdout
    again = server.script("start")  # idempotent: leaves the running parts alone
    assert again.returncode == 0 and "already running" in again.stdout, again.stdout + again.stderr
    assert server.script("restart").returncode == 2  # unknown command: usage, nothing started


def test_four_pipelines_at_once_store_everything(team: Team, capsys: pytest.CaptureFixture[str]) -> None:
    check_everything_stored(team)
    with capsys.disabled():
        print(f"\nteam server: 4 pipelines at once {team.seconds:.0f} s")


def test_runs_artifacts_and_models_go_through_the_server(team: Team) -> None:
    """Every stage's artifacts and each registered model's files are stored by the server, not the client."""
    for runs in team.runs:
        for stage, run in runs.items():
            assert run.info.artifact_uri.startswith("mlflow-artifacts:"), (stage, run.info.artifact_uri)
        assert "recipe.json" in {f.path for f in team.client.list_artifacts(runs["pipeline"].info.run_id)}
    for version in team.client.search_model_versions(f"name = '{team.name}'"):
        model = team.client.get_logged_model((version.source or "").removeprefix("models:/"))
        assert model.artifact_location.startswith("mlflow-artifacts:"), model.artifact_location
        files = {f.path for f in team.client.list_logged_model_artifacts(model.model_id)}
        assert "MLmodel" in files, files


def test_server_killed_during_training_and_restarted(
    server: Server, prepared_smoke: Path, tmp_path: Path
) -> None:
    """The MLflow server crashes (SIGKILL) while SFT trains and is back seconds later: nothing is lost.

    MLflow's client retries each request with backoff (0, 4, 8, 16, 32, 64, 120 s between tries), so
    a restart within about 4 minutes delays training but must neither fail it nor drop a metric point.
    """
    steps = 24  # enough steps that training is still going when the server dies
    client = MlflowClient(server.uri, server.uri)
    out = tmp_path / "out"
    out.mkdir()
    (out / "prepared").symlink_to(prepared_smoke)  # SFT needs only prep's outputs
    sft = launch(
        tmp_path,
        {"MLFLOW_TRACKING_URI": server.uri},
        ["train", "sft"],
        "tracking.experiment=team-fault",
        f"sft.args.max_steps={steps}",
    )
    record = out / "sft" / "run.json"
    deadline = time.monotonic() + TIMEOUT
    while not record.exists() or len(client.get_metric_history(_run_id(record), "train/loss")) < 2:
        assert sft.proc.poll() is None, sft.wait()[1][-5000:]
        assert time.monotonic() < deadline, "SFT logged no loss"
        time.sleep(0.5)
    server.kill_mlflow()
    assert json.loads(record.read_text())["status"] == "RUNNING", "training ended before the server died"
    time.sleep(3)
    assert sft.proc.poll() is None, "training failed as soon as the server died"
    restarted = server.script("start")
    assert restarted.returncode == 0, restarted.stdout + restarted.stderr

    code, log = sft.wait()
    assert code == 0, log[-5000:]
    run = client.get_run(_run_id(record))
    assert run.info.status == "FINISHED"
    for key in ("train/loss", "train/grad_norm", "train/learning_rate"):
        stored = sorted(m.step for m in client.get_metric_history(run.info.run_id, key))
        assert stored == list(range(1, steps + 1)), key  # every step once: none lost, none duplicated


def _run_id(record: Path) -> str:
    return str(json.loads(record.read_text())["run_id"])


@pytest.mark.slow  # by hand: ~5 CPU-minutes that CI's budget lacks; CI runs the trainings below
def test_four_pipelines_on_one_sqlite_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The embedded default store, one new file shared by four pipelines on one machine: all complete.

    Without the lock in `encore.tracking.setup`, all four create and migrate the new file's schema at
    once and crash (`table _alembic_tmp_… already exists`, `Online migration expected to match one row`).
    """
    team = four_at_once(tmp_path, f"sqlite:///{tmp_path / 'mlflow.db'}", "team-sqlite")
    check_everything_stored(team)
    with capsys.disabled():
        print(f"\nsqlite: 4 pipelines at once {team.seconds:.0f} s")


def test_four_trainings_at_once_on_one_new_sqlite_file(prepared_smoke: Path, tmp_path: Path) -> None:
    """CI's share of the SQLite load check: four `encore train sft` started together on one new file.

    The same race as four pipelines (each process creates the store and the experiment, then logs
    params, datasets, metrics and artifacts) without four Spark jobs: the stages train on the session's
    prepared data. Without the lock in `encore.tracking.setup` 3 of 4 crash creating the schema.
    """
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    trainings = []
    for i in range(4):
        out = tmp_path / f"t{i}" / "out"
        out.mkdir(parents=True)
        (out / "prepared").symlink_to(prepared_smoke)
        env = {**ONE_THREAD, "MLFLOW_TRACKING_URI": uri}
        trainings.append(
            launch(out.parent, env, ["train", "sft"], f"seed={i}", "tracking.experiment=sqlite-sft")
        )
    for training in trainings:
        code, log = training.wait()
        assert code == 0, log[-5000:]
    client = MlflowClient(uri, uri)
    experiment = client.get_experiment_by_name("sqlite-sft")
    assert experiment is not None
    runs = client.search_runs([experiment.experiment_id])
    assert sorted(r.data.params["output_dir"] for r in runs) == sorted(str(t.out) for t in trainings)
    assert all(r.info.status == "FINISHED" for r in runs)
    assert client.search_runs([client.get_experiment_by_name("Default").experiment_id]) == []
    for run in runs:  # every loss point once, the training set as an input, the adapter as an artifact
        assert (
            sorted(m.step for m in client.get_metric_history(run.info.run_id, "train/loss")) == TRAIN_POINTS
        )
        assert [i.dataset.name for i in run.inputs.dataset_inputs] == ["sft-train"]
        assert "adapter/adapter_config.json" in {
            f.path for f in client.list_artifacts(run.info.run_id, "adapter")
        }


def test_server_down_at_start_fails_at_once_with_one_line(tmp_path: Path) -> None:
    """Nothing listens at the URI: the pipeline stops before any work with one line naming the server.

    Without the preflight in `encore.tracking.setup`, MLflow's client retries the first request for
    about 4 minutes and the CLI then prints a traceback hundreds of lines long.
    """
    uri = f"http://127.0.0.1:{_free_port()}"  # a port nobody listens on
    code, log = launch(tmp_path, {"MLFLOW_TRACKING_URI": uri}, ["pipeline"]).wait()
    assert code == 1
    assert not (tmp_path / "out").exists(), "work started without a tracking server"
    assert "Traceback" not in log, log[-3000:]
    errors = [line for line in log.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, log[-3000:]
    assert uri in errors[0] and "docs/team-setup.md" in errors[0], errors[0]

"""Fault: the output disk fills up. The run fails with one line naming the path, and nothing half-written looks complete.

The output directory is a small tmpfs mounted in a private mount namespace (``unshare``), so the
test needs no privileges beyond user namespaces and leaves no mount behind. The checks of what is
left on the full disk run inside the same namespace, right after encore exits.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SMOKE = ROOT / "recipes" / "smoke" / "pipeline.yaml"

pytestmark = pytest.mark.integration


def _unshare() -> list[str]:
    if shutil.which("unshare") is None:
        pytest.skip("needs util-linux `unshare` to mount a small tmpfs privately")
    cmd = ["unshare", "--mount"] if os.geteuid() == 0 else ["unshare", "--mount", "--map-root-user"]
    probe = subprocess.run([*cmd, "sh", "-c", "mount -t tmpfs -o size=64k tmpfs /mnt"], capture_output=True)
    if probe.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs in a private namespace here: {probe.stderr.decode()[:200]}")
    return cmd


def _on_full_disk(
    tmp_path: Path, size: str, encore_args: list[str], after_mount: str = ""
) -> tuple[int, str, str]:
    """Run encore with `tmp_path/full` on a tmpfs of `size`; returns (exit code, stderr, what was left there)."""
    full = tmp_path / "full"
    full.mkdir(exist_ok=True)
    encore = " ".join([sys.executable, "-m", "encore.cli", *encore_args])
    script = (
        f"mount -t tmpfs -o size={size} tmpfs {full} || exit 99\n"
        f"{after_mount}\n"
        f"{encore} 2> {tmp_path}/stderr.txt\n"
        "rc=$?\n"
        f"find {full} -mindepth 1 | sort > {tmp_path}/left.txt\n"
        "exit $rc\n"
    )
    env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'mlflow.db'}"}
    done = subprocess.run([*_unshare(), "sh", "-c", script], env=env, cwd=tmp_path, timeout=900)
    assert done.returncode != 99, "mounting the tmpfs failed"
    return done.returncode, (tmp_path / "stderr.txt").read_text(), (tmp_path / "left.txt").read_text()


@pytest.fixture(scope="module")
def logs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    from playlist.simulator import simulate

    paths = simulate(tmp_path_factory.mktemp("logs"), seed=0, n_users=12, sessions_per_user=2)
    return {name: str(path) for name, path in paths.items()}


def _status(tmp_path: Path) -> list[str]:
    from mlflow import MlflowClient

    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("encore-smoke")
    return [r.info.status for r in client.search_runs([experiment.experiment_id])]


def test_prep_on_a_full_disk_fails_clearly_and_publishes_nothing(
    tmp_path: Path, logs: dict[str, str]
) -> None:
    sets = [f"data.logs.{name}={path}" for name, path in logs.items()]
    args = ["prep", str(SMOKE), "--set", "data.source=logs", "--set", f"output_dir={tmp_path}/full/out"]
    for s in sets:
        args += ["--set", s]
    rc, stderr, left = _on_full_disk(tmp_path, "96k", args)
    assert rc == 1, stderr[-3000:]
    lines = [line for line in stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and "no space left" in lines[0] and f"{tmp_path}/full/out" in lines[0], stderr[
        -3000:
    ]
    assert "manifest.json" not in left and "/prepared\n" not in left + "\n", left
    assert _status(tmp_path) == ["FAILED"]


def test_sft_adapter_on_a_full_disk_leaves_no_adapter_that_looks_complete(
    tmp_path: Path, prepared_smoke: Path
) -> None:
    # The session's prepared data, on a normal disk; training writes its outputs to a disk too small for them.
    script_args = [
        "train", "sft", str(SMOKE), "--set", f"output_dir={tmp_path}/full/out", "--set", "sft.args.max_steps=2",
    ]  # fmt: skip
    # The prepared data is read from the normal disk through a symlink; only outputs land on the tmpfs.
    full = tmp_path / "full"
    mount_script_prefix = f"mkdir -p {full}/out && ln -s {prepared_smoke} {full}/out/prepared"
    rc, stderr, left = _on_full_disk(tmp_path, "48k", script_args, mount_script_prefix)
    assert rc == 1, stderr[-3000:]
    assert any(line.startswith("error:") and "no space left" in line for line in stderr.splitlines()), stderr[
        -3000:
    ]
    assert "/sft/adapter\n" not in left + "\n" and "adapter_config.json" not in left, left

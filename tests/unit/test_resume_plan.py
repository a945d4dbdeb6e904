"""Where a training stage restarts: the run record, the checkpoints, and what `--resume` asks (encore.train.resume)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from encore.train.resume import (
    ResumeError,
    ResumePoint,
    clear_stale_checkpoints,
    last_checkpoint,
    plan,
    read_record,
    write_record,
)


def checkpoint(stage_dir: Path, step: int, complete: bool = True) -> Path:
    path = stage_dir / "checkpoints" / f"checkpoint-{step}"
    path.mkdir(parents=True)
    if complete:
        (path / "trainer_state.json").write_text(json.dumps({"global_step": step}))
    return path


def test_last_checkpoint_is_the_highest_complete_step(tmp_path: Path) -> None:
    checkpoint(tmp_path, 3)
    ten = checkpoint(tmp_path, 10)  # numeric order, not "checkpoint-10" < "checkpoint-3"
    checkpoint(tmp_path, 12, complete=False)  # killed while writing: no trainer_state.json
    (tmp_path / "checkpoints" / "checkpoint-14").mkdir()
    (tmp_path / "checkpoints" / "checkpoint-14" / "trainer_state.json").write_text('{"glob')  # cut short
    assert last_checkpoint(tmp_path / "checkpoints") == (ten, 10)
    assert last_checkpoint(tmp_path / "nothing") is None


@pytest.mark.parametrize("status", ["RUNNING", "FAILED"])
def test_an_unfinished_run_with_a_checkpoint_resumes_automatically(tmp_path: Path, status: str) -> None:
    ckpt = checkpoint(tmp_path, 3)
    write_record(tmp_path, "run-1", status, ResumePoint())
    assert plan(tmp_path, None) == ResumePoint("run-1", ckpt, 3)


def test_a_finished_run_or_no_checkpoint_or_no_record_starts_over(tmp_path: Path) -> None:
    write_record(tmp_path, "run-1", "RUNNING", ResumePoint())
    assert plan(tmp_path, None) == ResumePoint()  # killed before its first checkpoint
    checkpoint(tmp_path, 3)
    write_record(tmp_path, "run-1", "FINISHED", ResumePoint())
    assert plan(tmp_path, None) == ResumePoint()
    (tmp_path / "run.json").unlink()
    assert plan(tmp_path, None) == ResumePoint()


def test_no_resume_always_starts_over(tmp_path: Path) -> None:
    checkpoint(tmp_path, 3)
    write_record(tmp_path, "run-1", "RUNNING", ResumePoint())
    assert plan(tmp_path, False) == ResumePoint()


def test_resume_without_a_checkpoint_or_after_a_finished_run_is_an_error(tmp_path: Path) -> None:
    write_record(tmp_path, "run-1", "RUNNING", ResumePoint())
    with pytest.raises(ResumeError, match="no complete checkpoint"):
        plan(tmp_path, True)
    checkpoint(tmp_path, 3)
    write_record(tmp_path, "run-1", "FINISHED", ResumePoint())
    with pytest.raises(ResumeError, match="finished"):
        plan(tmp_path, True)


def test_resume_without_a_record_continues_the_checkpoint_in_a_new_run(tmp_path: Path) -> None:
    ckpt = checkpoint(tmp_path, 5)
    assert plan(tmp_path, True) == ResumePoint(None, ckpt, 5)


def test_what_rank_0_writes_before_training_never_changes_another_ranks_decision(tmp_path: Path) -> None:
    # A finished run's checkpoints: a fresh start. Whether another rank looks before or after rank 0
    # clears them and records its new run, it decides the same (no barrier needed).
    checkpoint(tmp_path, 3)
    write_record(tmp_path, "old", "FINISHED", ResumePoint())
    before = plan(tmp_path, None)
    clear_stale_checkpoints(tmp_path)
    assert plan(tmp_path, None) == before
    write_record(tmp_path, "new", "RUNNING", before)
    assert plan(tmp_path, None) == before == ResumePoint()
    # An interrupted run: rank 0 rewrites the record with the same run id; the decision stands.
    ckpt = checkpoint(tmp_path, 6)
    point = plan(tmp_path, None)
    write_record(tmp_path, "new", "RUNNING", point)
    assert plan(tmp_path, None) == point == ResumePoint("new", ckpt, 6)


def test_the_record_says_where_the_attempt_resumed_from(tmp_path: Path) -> None:
    ckpt = checkpoint(tmp_path, 3)
    write_record(tmp_path, "run-1", "FINISHED", ResumePoint("run-1", ckpt, 3))
    record = read_record(tmp_path)
    assert record is not None
    assert record["status"] == "FINISHED" and record["run_id"] == "run-1"
    assert record["resumed_from"] == str(ckpt) and record["resumed_from_step"] == 3
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temp file left

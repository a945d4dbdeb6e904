"""Resuming an interrupted training stage: its run record (`<out>/<stage>/run.json`) and its last checkpoint.

A training stage writes `run.json` when it starts (its MLflow run id, status RUNNING) and again
when it ends (FINISHED or FAILED). The trainer saves checkpoints to `<out>/<stage>/checkpoints/
checkpoint-<step>` when the recipe asks for them (`args.save_strategy: steps`, `args.save_steps`).
On the next start the stage continues from the last complete checkpoint, in the same MLflow run,
when the record says the run did not finish (RUNNING: the process was killed; FAILED: it raised).

The decision (`plan`) depends only on the record and the checkpoints, and the only writes before
training (rank 0 clears stale checkpoints first, then rewrites the record) never change it. So every
rank of a distributed launch reaches the same decision on its own, in any order, with no barrier.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path

from encore.errors import UserFacingError

RECORD = "run.json"
CHECKPOINTS = "checkpoints"
# `encore train <stage> --resume` sets 1, `--no-resume` 0; unset means automatic. An environment
# variable, so the processes of a distributed launch see what the command line said.
RESUME_ENV = "ENCORE_RESUME"
_CHECKPOINT = re.compile(r"^checkpoint-(\d+)$")


class ResumeError(UserFacingError):
    """`--resume` was asked for, but there is nothing to resume; the message says why and what to do."""


@dataclass(frozen=True)
class ResumePoint:
    """Where a stage's training starts: a new run from step 0, or an earlier run from a checkpoint."""

    run_id: str | None = None  # the MLflow run to continue; None starts a new one
    checkpoint: Path | None = None  # the checkpoint to continue from; None trains from the start
    step: int = 0


def requested() -> bool | None:
    """What the command line asked for: True (`--resume`), False (`--no-resume`) or None (automatic)."""
    value = os.environ.get(RESUME_ENV, "")
    return None if value == "" else value == "1"


def read_record(stage_dir: Path) -> dict[str, object] | None:
    """The stage's run record, or None when there is none (or it is unreadable: a write cut short)."""
    try:
        record = json.loads((stage_dir / RECORD).read_text())
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) else None


def write_record(stage_dir: Path, run_id: str, status: str, point: ResumePoint) -> None:
    """Write `run.json` atomically (a temp file renamed into place), so a kill never leaves half of it."""
    stage_dir.mkdir(parents=True, exist_ok=True)
    record = {
        "run_id": run_id,
        "status": status,
        "resumed_from": str(point.checkpoint) if point.checkpoint else None,
        "resumed_from_step": point.step if point.checkpoint else None,
        "updated": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    tmp = stage_dir / f".{RECORD}.{uuid.uuid4().hex[:8]}"
    tmp.write_text(json.dumps(record, indent=2) + "\n")
    tmp.replace(stage_dir / RECORD)


def last_checkpoint(checkpoints: Path) -> tuple[Path, int] | None:
    """The complete checkpoint with the highest step, and that step.

    The trainer writes `trainer_state.json` last, so a checkpoint without a readable one was cut
    short by the kill and is skipped.
    """
    if not checkpoints.is_dir():
        return None
    found = []
    for path in checkpoints.iterdir():
        match = _CHECKPOINT.match(path.name)
        if not match or not path.is_dir():
            continue
        try:
            json.loads((path / "trainer_state.json").read_text())
        except (OSError, ValueError):
            continue
        found.append((int(match.group(1)), path))
    if not found:
        return None
    step, path = max(found)
    return path, step


def plan(stage_dir: Path, resume: bool | None) -> ResumePoint:
    """Decide where training starts.

    Args:
        stage_dir: `<out>/<stage>`, holding `run.json` and `checkpoints/`.
        resume: True: continue from the last checkpoint or fail; False: start over; None:
            continue when the record says the run did not finish and a checkpoint exists.

    Raises:
        ResumeError: `resume` is True but there is no checkpoint, or the recorded run finished.
    """
    record = read_record(stage_dir) or {}
    found = last_checkpoint(stage_dir / CHECKPOINTS)
    status = record.get("status")
    recorded_id = record.get("run_id")
    run_id = recorded_id if isinstance(recorded_id, str) else None
    if resume is False:
        return ResumePoint()
    if resume is True:
        if found is None:
            raise ResumeError(
                f"{stage_dir / CHECKPOINTS}: no complete checkpoint to resume from "
                "(checkpoints are written with args.save_strategy: steps and args.save_steps: N)"
            )
        if status == "FINISHED":
            raise ResumeError(
                f"{stage_dir / RECORD}: run {run_id} finished; nothing to resume (--no-resume trains again)"
            )
        return ResumePoint(run_id, found[0], found[1])
    if found is not None and status in ("RUNNING", "FAILED") and run_id:
        return ResumePoint(run_id, found[0], found[1])
    return ResumePoint()


def clear_stale_checkpoints(stage_dir: Path) -> None:
    """Remove the checkpoints of an earlier run before a fresh start, so no later resume picks one up.

    The directory is renamed away first (one atomic step), then deleted: a rank that looks at it
    meanwhile sees either all of it with the old record, or none of it.
    """
    checkpoints = stage_dir / CHECKPOINTS
    if not checkpoints.exists():
        return
    trash = stage_dir / f".{CHECKPOINTS}.stale-{uuid.uuid4().hex[:8]}"
    checkpoints.rename(trash)
    shutil.rmtree(trash, ignore_errors=True)


_ACTIVE: ContextVar[ResumePoint | None] = ContextVar("encore_resume_point", default=None)


@contextmanager
def active(point: ResumePoint) -> Iterator[None]:
    """Make `point` the current stage's resume point (read by `train_adapter`) for the block."""
    token = _ACTIVE.set(point)
    try:
        yield
    finally:
        _ACTIVE.reset(token)


def active_checkpoint() -> Path | None:
    """The checkpoint the current stage continues from (set by `tracking.stage_run`), or None."""
    point = _ACTIVE.get()
    return point.checkpoint if point else None

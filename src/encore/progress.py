"""What a command shows on the terminal: one line per stage, while the libraries' output goes to a log file.

Quiet (the default of `encore pipeline` and the stage commands), everything the process and its
children write to stdout and stderr goes to the log: Python warnings, transformers / datasets / TRL
logging and progress bars, and the Spark JVM's WARN lines (a local driver's JVM inherits the file
descriptors of the Python process that starts it, so only redirecting descriptors 1 and 2 catches
it; Spark's own log level is set only once the JVM is up). The terminal gets, per stage::

    ✓ prep       41 s  575 pairs · 228 SFT rows · 61 eval requests

with a spinner and the time elapsed while the stage runs. Verbose, nothing is redirected and the
same lines appear among the libraries' output.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from rich.console import Console
from rich.progress import Progress as Bar
from rich.progress import SpinnerColumn, TextColumn, TimeElapsedColumn


@dataclass
class StageLine:
    """What a finished stage's line says after its time; the code that ran the stage sets it."""

    note: str = ""


class Progress:
    """Stage lines on ``console``; ``log`` is the file that holds everything else (None when verbose)."""

    def __init__(self, console: Console, log: Path | None = None) -> None:
        self.console = console
        self.log = log

    @contextmanager
    def stage(self, name: str) -> Iterator[StageLine]:
        """One line for the stage run in the block: ✓ with its time and note, or ✗ when it raises."""
        line = StageLine()
        start = time.perf_counter()
        if self.log is not None:  # where the stage's output starts in the log (sys.stderr is the log here)
            print(f"\n======== {name} ========", file=sys.stderr, flush=True)
        try:
            with self._spinner(name):
                yield line
        except BaseException as exc:
            # SystemExit: SIGTERM (encore.cli), KeyboardInterrupt: Ctrl-C; anything else is a failure.
            how = "stopped" if isinstance(exc, SystemExit | KeyboardInterrupt) else "failed"
            self._print("[bold red]✗[/]", name, time.perf_counter() - start, how)
            raise
        self._print("[green]✓[/]", name, time.perf_counter() - start, line.note)

    def _print(self, mark: str, name: str, seconds: float, note: str) -> None:
        self.console.print(f"{mark} {name:<9} {seconds:>4.0f} s  {note}".rstrip(), highlight=False)

    @contextmanager
    def _spinner(self, name: str) -> Iterator[None]:
        # Verbose, the libraries' own output would tear a live line apart; on a pipe it would not show.
        if self.log is None or not self.console.is_terminal:
            yield
            return
        # No redirection of sys.stdout/sys.stderr by rich: they go to the log, not above the spinner.
        bar = Bar(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            TimeElapsedColumn(),
            console=self.console,
            transient=True,
            redirect_stdout=False,
            redirect_stderr=False,
        )
        with bar:
            bar.add_task(name)
            yield


def _fileno(stream: TextIO) -> int | None:
    try:
        return stream.fileno()
    except (AttributeError, OSError, ValueError):  # io.UnsupportedOperation: an in-memory stream
        return None


@contextmanager
def quiet(log: Path) -> Iterator[TextIO]:
    """Send this process's stdout and stderr to ``log`` (a new file): descriptors 1, 2 and sys.stdout/stderr.

    Yields a stream on what stdout was, for the lines meant for the user. An exception leaving the
    block is written to the log with its traceback. A child process started inside (Spark's JVM) keeps
    writing to the log after the block: it holds its own copies of the descriptors.
    """
    log.parent.mkdir(parents=True, exist_ok=True)
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    sink = open(log, "w", buffering=1, encoding="utf-8", errors="replace")  # noqa: SIM115 (closed below)
    stdout, stderr = sys.stdout, sys.stderr
    # An in-memory sys.stdout (typer's CliRunner) is not descriptor 1, so it still reaches its reader.
    own_terminal = _fileno(stdout) == 1
    terminal = (
        open(os.dup(1), "w", buffering=1, encoding=stdout.encoding, errors="replace")  # noqa: SIM115
        if own_terminal
        else stdout
    )
    saved = {fd: os.dup(fd) for fd in (1, 2)}
    try:
        for fd in saved:
            os.dup2(sink.fileno(), fd)
        with contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
            try:
                yield terminal
            except BaseException:
                with contextlib.suppress(OSError):  # a full disk must not hide the error itself
                    sink.write(traceback.format_exc())
                raise
    finally:
        # What libraries wrote through the original streams (a handler holds sys.stderr) belongs in the log.
        for stream in (stdout, stderr):
            with contextlib.suppress(OSError, ValueError):
                stream.flush()
        for fd, copy in saved.items():
            os.dup2(copy, fd)
            os.close(copy)
        with contextlib.suppress(OSError):
            sink.close()
        if own_terminal:
            terminal.close()


@contextmanager
def command_output(
    out: Path, recipe: str, command: str, verbose: bool, console: Console, err: Console
) -> Iterator[Progress]:
    """Stage lines on `console`; unless verbose, everything else in `<out>/logs/<command>.log`, logged to
    the MLflow run the command ends.

    A launched process (`--launcher`) is always verbose: its output is its launcher's log.
    """
    import shutil
    import tempfile

    from encore.launch import LAUNCHED_ENV

    if verbose or os.environ.get(LAUNCHED_ENV):
        yield Progress(console)
        return
    log = out / "logs" / f"{command}.log"
    # A command that stops before any work (a bad tracking URI) must leave no output directory behind:
    # until the output directory exists, the log is written in the temp dir and moved in at the end.
    staging = (
        log if out.exists() else Path(tempfile.gettempdir()) / f"encore-{recipe}-{command}-{os.getpid()}.log"
    )
    before, failed = None, False
    try:
        with quiet(staging) as terminal:
            before = _last_run_id()  # a command run in this process before (tests) ended that one
            yield Progress(Console(file=terminal, soft_wrap=True), log)
    except BaseException:
        failed = True
        raise
    finally:
        if staging != log and out.exists():
            log.parent.mkdir(parents=True, exist_ok=True)
            shutil.move(staging, log)
            staging = log
        if failed:
            err.print(f"the full output: {staging}", highlight=False)
        _log_output(staging, before, err)


def _last_run_id() -> str | None:
    """The run this process ended last (none is active between commands), or None."""
    import mlflow

    run = mlflow.last_active_run()
    return None if run is None else run.info.run_id


def _log_output(log: Path, before: str | None, err: Console) -> None:
    """Log the command's log file to the run it ended last (the pipeline's, or the stage's), if it ended one."""
    import mlflow

    try:
        run_id = _last_run_id()
        if run_id is not None and run_id != before:
            mlflow.MlflowClient().log_artifact(run_id, str(log), "logs")
    except Exception as e:  # the command's own outcome (or error) matters more than its log
        err.print(f"[yellow]warning:[/] {log} was not logged to MLflow: {e}", highlight=False)

"""The local cache of built base models: where it lives, and building an entry once, atomically."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import platformdirs
from filelock import FileLock

from playlist.publish import publishing


def cache_dir() -> Path:
    """Root of encore's cache: ``$ENCORE_CACHE`` if set, else the user cache directory for ``encore``."""
    env = os.environ.get("ENCORE_CACHE")
    return Path(env) if env else Path(platformdirs.user_cache_dir("encore"))


def build_once(target: Path, build: Callable[[Path], None]) -> Path:
    """Return ``target``, first building it with ``build(tmp_dir)`` if it does not exist yet.

    The build writes into a temporary directory next to ``target`` that is renamed into place when
    complete, so ``target`` either does not exist or is whole (a crash leaves only a stray temporary
    directory). A file lock makes concurrent callers (two ranks of a DDP run, two test workers) wait
    for one build instead of racing.

    Args:
        target: The directory to create.
        build: Writes the entry's files into the directory it is given.

    Returns:
        ``target``.
    """
    if target.is_dir():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(target) + ".lock"):
        if target.is_dir():  # another process built it while we waited for the lock
            return target
        with publishing(target) as tmp:
            tmp.mkdir()
            build(tmp)
    return target

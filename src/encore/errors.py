"""Turning the failures a user can fix (a full disk, an unreachable service) into one-line messages."""

from __future__ import annotations

import errno
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

_NO_SPACE = ("No space left on device", "Disk quota exceeded")


class RecipeError(ValueError):
    """A recipe that cannot run; the message names the file and the key."""


class UserFacingError(RuntimeError):
    """An error whose message says what happened and what to do; the CLI prints it without a traceback."""


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def is_disk_full(exc: BaseException) -> bool:
    """True when ``exc`` or anything in its chain (a JVM error from Spark included) is ENOSPC/EDQUOT."""
    for e in _chain(exc):
        if isinstance(e, OSError) and e.errno in (errno.ENOSPC, errno.EDQUOT):
            return True
        if any(marker in str(e) for marker in _NO_SPACE):
            return True
    return False


@contextmanager
def disk_full_reported(out: Path) -> Iterator[None]:
    """Re-raise a full disk while writing under ``out`` as a :class:`UserFacingError` naming the path."""
    try:
        yield
    except Exception as exc:
        if not is_disk_full(exc):
            raise
        raise UserFacingError(
            f"no space left on the device holding {out.resolve()} (nothing was published there); "
            "free some space or point output_dir elsewhere, then run again"
        ) from exc

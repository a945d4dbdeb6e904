"""Atomic publishing of an output directory: write it beside its place, then rename it in.

A crash or a full disk half-way leaves only a hidden temporary sibling (removed on failure), never a
directory that looks complete; an older directory is replaced only once the new one is whole. The
prep job's outputs, saved adapters and the model cache are all published this way.

Example::

    >>> with publishing(Path("outputs/smoke/sft/adapter")) as tmp:
    ...     model.save_pretrained(tmp)
"""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def temporary_sibling(target: Path, kind: str = "tmp") -> Path:
    """A hidden, unique path beside ``target``: ``.<name>.<kind>-<8 hex>`` (on the same file system)."""
    return target.with_name(f".{target.name}.{kind}-{uuid.uuid4().hex[:8]}")


def publish(tmp: Path, target: Path) -> None:
    """Rename the finished ``tmp`` to ``target``; an existing ``target`` is swapped out, then removed."""
    if target.exists():
        old = temporary_sibling(target, "old")
        target.rename(old)
        tmp.rename(target)
        shutil.rmtree(old)
    else:
        tmp.rename(target)


@contextmanager
def publishing(target: Path) -> Iterator[Path]:
    """Yield a temporary sibling of ``target`` to write into, published as ``target`` when the block ends.

    Raises:
        Whatever the block raised; the temporary directory is removed then, and ``target`` is untouched.
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = temporary_sibling(target)
    try:
        yield tmp
        publish(tmp, target)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)

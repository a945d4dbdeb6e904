"""Unit-test fixtures: a random-weight `builtin:tiny` built from a small corpus in a temporary cache."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from encore.models import load_model, resolve_model

CORPUS = [f"Request: {m} {g} please. c{i % 9} | Artist {i % 7} - Song {i % 11}" for i, (m, g) in enumerate(
    (m, g) for m in ("mellow", "upbeat", "dark") for g in ("folk", "rock", "jazz"))] * 20  # fmt: skip


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """(model, tokenizer) of `builtin:tiny` on :data:`CORPUS`, seeded: built once per module."""
    root: Path = tmp_path_factory.mktemp("encore-cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ENCORE_CACHE", str(root))
        path = resolve_model("builtin:tiny", corpus=CORPUS)
    torch.manual_seed(0)
    return load_model(path)

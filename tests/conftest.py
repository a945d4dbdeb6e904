"""Shared fixtures: a session-scoped local Spark session, and no hub access for any test."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def spark() -> Iterator[object]:
    from data_prep.session import get_spark

    session = get_spark("local[1]", app_name="encore-tests")
    yield session
    session.stop()


@pytest.fixture(autouse=True)
def _offline(monkeypatch: pytest.MonkeyPatch) -> None:
    # Tests must never reach a hub.
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    os.environ.setdefault("ENCORE_CACHE", str(Path(__file__).resolve().parents[1] / ".cache" / "encore"))

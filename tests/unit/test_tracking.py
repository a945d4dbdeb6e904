"""`encore.tracking.activate_experiment`: the experiment is active even when another run created it first."""

from __future__ import annotations

from collections.abc import Iterator

import mlflow
import pytest
from mlflow import MlflowClient
from mlflow.tracking._tracking_service.client import TrackingServiceClient

from encore.tracking import activate_experiment


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One SQLite store for the module (creating one takes seconds); each test uses its own experiment name."""
    uri = f"sqlite:///{tmp_path_factory.mktemp('tracking') / 'mlflow.db'}"
    with pytest.MonkeyPatch.context() as patch:
        patch.delenv("MLFLOW_EXPERIMENT_ID", raising=False)
        patch.delenv("MLFLOW_EXPERIMENT_NAME", raising=False)
        mlflow.set_tracking_uri(uri)
        mlflow.tracking.fluent._active_experiment_id = None  # another module's experiment, in another store
        yield uri
    mlflow.tracking.fluent._active_experiment_id = None
    mlflow.set_tracking_uri(None)


def _lose_the_race(monkeypatch: pytest.MonkeyPatch, uri: str) -> None:
    """Another process creates the experiment between this one's lookup and its create.

    Patched where both `mlflow.set_experiment` and `MlflowClient` look experiments up.
    """
    lookup = TrackingServiceClient.get_experiment_by_name
    calls = {"n": 0}

    def first_lookup_misses(self: TrackingServiceClient, name: str):  # type: ignore[no-untyped-def]
        calls["n"] += 1
        if calls["n"] == 1:
            lookup(self, name)  # the real lookup: nothing there yet …
            MlflowClient(uri).create_experiment(name)  # … and the other process creates it just then
            return None
        return lookup(self, name)

    monkeypatch.setattr(TrackingServiceClient, "get_experiment_by_name", first_lookup_misses)


def test_mlflow_set_experiment_loses_the_race(store: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Why encore does not call `mlflow.set_experiment(name)`: its run would go to `Default`."""
    _lose_the_race(monkeypatch, store)
    mlflow.set_experiment("team-a")
    with mlflow.start_run() as run:
        pass
    assert MlflowClient(store).get_experiment(run.info.experiment_id).name == "Default"


def test_activate_experiment_wins_the_race(store: str, monkeypatch: pytest.MonkeyPatch) -> None:
    _lose_the_race(monkeypatch, store)
    experiment_id = activate_experiment("team-b")
    with mlflow.start_run() as run:
        pass
    assert run.info.experiment_id == experiment_id
    assert MlflowClient(store).get_experiment(experiment_id).name == "team-b"


def test_activate_experiment_creates_or_reuses(store: str) -> None:
    created = activate_experiment("solo")
    assert activate_experiment("solo") == created
    assert MlflowClient(store).get_experiment(created).name == "solo"

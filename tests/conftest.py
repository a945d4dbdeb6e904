"""Shared fixtures: a session-scoped local Spark session, and no hub access for any test; the xdist work units."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

# Every JVM the tests start (Spark drivers and executors, the standalone cluster's daemons) runs short
# jobs on tiny data: the C1 JIT alone compiles enough for them and spends about a third less CPU than
# C1 + C2 (docs/benchmarks.md). Set before any JVM or xdist worker starts, so all of them inherit it.
os.environ.setdefault("JAVA_TOOL_OPTIONS", "-XX:TieredStopAtLevel=1")

# The integration modules that read the one smoke pipeline run (tests/integration/conftest.py): under
# xdist they run on one worker, so that the run is made once and no two workers use it at the same time.
SMOKE_RUN_MODULES = frozenset(
    {
        "test_browser.py",
        "test_collect.py",
        "test_flywheel.py",
        "test_notebooks.py",
        "test_pipeline.py",
        "test_serving.py",
    }
)


@pytest.hookimpl(optionalhook=True)  # an xdist hook: the tests also run without xdist
def pytest_xdist_make_scheduler(config: pytest.Config, log: object) -> object:
    """Under xdist (`-n N`), one work unit per test module, and one for all of :data:`SMOKE_RUN_MODULES`.

    A module's module-scoped fixtures (servers, clusters) then start once. Not `--dist loadgroup`:
    with pytest 9.2 its `xdist_group` marks are silently ignored (pytest-dev/pytest-xdist#1386).
    Work units go out in collection order (run with `--no-loadscope-reorder`), longest first.
    """
    from xdist.scheduler import LoadScopeScheduling

    class ModuleScheduling(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            module = nodeid.split("::", 1)[0]
            return "smoke-run" if Path(module).name in SMOKE_RUN_MODULES else module

    return ModuleScheduling(config, log)  # type: ignore[arg-type]


# The modules that take longest, started first, so that no worker is left with one of them at the end.
LONGEST_FIRST = ("test_team_server.py", "test_spark_cluster.py", "test_browser.py", "test_data_prep_fuzz.py")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Longest modules first; check that every module reading the smoke run shares its xdist worker."""
    readers = {item.path.name for item in items if "smoke" in getattr(item, "fixturenames", ())}
    assert readers <= SMOKE_RUN_MODULES, f"add {sorted(readers - SMOKE_RUN_MODULES)} to SMOKE_RUN_MODULES"
    rank = {name: i for i, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))  # stable: the rest keep their order


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


_MLFLOW_ENV = ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI", "MLFLOW_EXPERIMENT_ID", "MLFLOW_EXPERIMENT_NAME")


@pytest.fixture(autouse=True)
def _mlflow_process_state() -> Iterator[None]:
    """Each test leaves MLflow's process-wide state as it found it: the URIs, their env vars, the active experiment.

    `mlflow.set_experiment` in one test otherwise leaves its experiment id active for the next, which then
    starts its runs in whatever experiment has that id in *its* store (seen in CI: a run meant for
    `Default` landed in the next test's own experiment). Wider-scoped fixtures that set a store stay in force:
    their state is what each test finds and is given back.
    """
    env = {name: os.environ.get(name) for name in _MLFLOW_ENV}
    before = _mlflow_globals()
    yield
    for name, value in env.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value
    if before is not None or "mlflow.tracking.fluent" in sys.modules:
        fluent, tracking, registry = _mlflow_modules()
        fluent._active_experiment_id, tracking._tracking_uri, registry._registry_uri = before or (
            None,
            None,
            None,
        )


def _mlflow_modules() -> tuple[Any, Any, Any]:
    from mlflow.tracking import fluent
    from mlflow.tracking._model_registry import utils as registry
    from mlflow.tracking._tracking_service import utils as tracking

    return fluent, tracking, registry


def _mlflow_globals() -> tuple[Any, Any, Any] | None:
    """The active experiment id, tracking URI and registry URI; None while MLflow is not imported."""
    if "mlflow.tracking.fluent" not in sys.modules:
        return None
    fluent, tracking, registry = _mlflow_modules()
    return fluent._active_experiment_id, tracking._tracking_uri, registry._registry_uri

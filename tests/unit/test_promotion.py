"""The promotion flow (`encore.registry.promotion.promote_version`) without the CLI, on a real SQLite registry.

The versions are real registry entries; what each one scores on the eval set is given per version in
place of `promote.evaluate_version` (loading and answering with a pyfunc is covered end to end by
tests/integration/test_registry.py). What is under test is the flow around it: which versions are
compared, which floors are in force, what is recorded on the version, which aliases move and when.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import mlflow
import pandas as pd
import pytest
from mlflow import MlflowClient

from encore.registry import promote as gate
from encore.registry.promotion import PromotionError, promote_version
from evaluation.score import EvalResult

NAME = "playlist-generator"
PROMPTS = [f"p{i}" for i in range(8)]
GOOD = {"format_valid": 1.0, "grounded": 1.0, "distinct_artist_ratio": 0.9}


@pytest.fixture
def registry(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """A registry with versions 1 (fulfillment 0.5 a row) and 2 (0.5 + 0.1 a row, with noise), an eval set."""
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    client = MlflowClient(uri, uri)
    eval_set = tmp_path / "eval.parquet"
    pd.DataFrame({"prompt_id": PROMPTS, "request": ["folk"] * len(PROMPTS)}).to_parquet(eval_set)
    client.create_registered_model(NAME)
    scores = {"1": [0.5] * 8, "2": [0.6, 0.62, 0.58, 0.61, 0.6, 0.59, 0.6, 0.6], "3": [0.45] * 8}
    for version in scores:
        client.create_model_version(NAME, source=str(tmp_path / f"model-{version}"))
        client.set_model_version_tag(NAME, version, "eval_set", str(eval_set))
    evaluated: list[str] = []

    def evaluate_version(uri: str, rows: Any, catalog: Any = None, seed: int = 0) -> tuple[EvalResult, Any]:
        version = uri.rsplit("/", 1)[1]
        evaluated.append(version)
        per_row = [
            {"prompt_id": r["prompt_id"], "fulfillment": s}
            for r, s in zip(rows, scores[version], strict=False)
        ]
        fulfillment = sum(row["fulfillment"] for row in per_row) / len(per_row)
        return EvalResult({**GOOD, "fulfillment": fulfillment}, per_row), "catalog"

    monkeypatch.setattr(gate, "evaluate_version", evaluate_version)
    return {"client": client, "evaluated": evaluated, "eval_set": eval_set}


def _aliases(client: MlflowClient) -> dict[str, str]:
    return {alias: str(v) for alias, v in client.get_registered_model(NAME).aliases.items()}


def test_the_first_candidate_becomes_champion_and_the_decision_is_recorded(registry: dict[str, Any]) -> None:
    client = registry["client"]
    client.set_registered_model_alias(NAME, "candidate", "1")
    done = promote_version(client, NAME)
    assert done.promoted and done.champion is None and done.paired is None
    assert _aliases(client) == {"candidate": "1", "champion": "1"}
    assert client.get_model_version(NAME, "1").tags["promotion.champion"] == "promoted (no champion)"
    assert done.report()["promoted"] is True and done.report()["n_requests"] == len(PROMPTS)


def test_a_better_candidate_moves_champion_and_keeps_the_old_one_as_previous(
    registry: dict[str, Any],
) -> None:
    client = registry["client"]
    client.set_registered_model_alias(NAME, "champion", "1")
    client.set_registered_model_alias(NAME, "candidate", "2")
    lines: list[str] = []
    done = promote_version(client, NAME, min_z=2, say=lines.append)
    assert registry["evaluated"] == ["2", "1"] and len(lines) == 2
    assert done.paired is not None and done.paired.n == len(PROMPTS)
    assert done.paired.mean == pytest.approx(0.1) and done.promoted
    assert _aliases(client) == {"candidate": "2", "champion": "2", "previous-champion": "1"}


def test_a_worse_candidate_is_refused_and_no_alias_moves(registry: dict[str, Any]) -> None:
    client = registry["client"]
    client.set_registered_model_alias(NAME, "champion", "1")
    client.set_registered_model_alias(NAME, "candidate", "3")
    done = promote_version(client, NAME)
    assert not done.promoted and any("fulfillment" in r for r in done.decision.reasons)
    assert _aliases(client) == {"candidate": "3", "champion": "1"}
    assert client.get_model_version(NAME, "3").tags["promotion.champion"].startswith("refused: ")
    # The reverse of a promotion is refused the same way: the old champion does not beat the new one.
    client.set_registered_model_alias(NAME, "candidate", "2")
    assert promote_version(client, NAME).promoted
    client.set_registered_model_alias(NAME, "candidate", "1")
    assert not promote_version(client, NAME).promoted
    assert _aliases(client)["champion"] == "2"


def test_floors_the_defaults_then_the_versions_own_then_the_callers(registry: dict[str, Any]) -> None:
    client = registry["client"]
    client.set_registered_model_alias(NAME, "candidate", "1")
    client.set_model_version_tag(NAME, "1", "floor.distinct_artist_ratio", "0.95")  # above its 0.9
    done = promote_version(client, NAME)
    assert done.floors == {**gate.FLOORS, "distinct_artist_ratio": 0.95} and not done.promoted
    assert "champion" not in _aliases(client)
    done = promote_version(client, NAME, floors={"distinct_artist_ratio": 0.8})
    assert done.floors["distinct_artist_ratio"] == 0.8 and done.promoted


def test_an_alias_moved_during_evaluation_is_a_conflict_and_nothing_moves(registry: dict[str, Any]) -> None:
    client = registry["client"]
    client.set_registered_model_alias(NAME, "champion", "1")
    client.set_registered_model_alias(NAME, "candidate", "2")

    def another_promotion(line: str) -> None:  # said just before the champion is evaluated
        if "same requests" in line:
            client.set_registered_model_alias(NAME, "champion", "3")

    done = promote_version(client, NAME, say=another_promotion)
    assert done.decision.promote and not done.promoted
    assert done.conflict is not None and "version 3, not 1" in done.conflict
    assert _aliases(client) == {"candidate": "2", "champion": "3"}


def test_a_missing_alias_or_eval_set_is_an_error_before_any_evaluation(
    registry: dict[str, Any], tmp_path: Path
) -> None:
    client = registry["client"]
    with pytest.raises(PromotionError, match=f"{NAME}@candidate does not exist"):
        promote_version(client, NAME)
    client.set_registered_model_alias(NAME, "candidate", "1")
    with pytest.raises(PromotionError, match="no eval set"):
        promote_version(client, NAME, eval_set=tmp_path / "missing.parquet")
    assert registry["evaluated"] == []

"""`python -m evaluation.pair_labels` on the smoke prep: every train pair's prompt has its logged intent."""

from __future__ import annotations

from pathlib import Path

import pytest

from encore.config import load_recipe
from encore.pair_labels import main

pytestmark = pytest.mark.integration

SMOKE = Path(__file__).resolve().parents[2] / "recipes" / "smoke" / "pipeline.yaml"


def test_every_train_pair_is_scored_against_its_intent(prepared_smoke: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    table = main([str(SMOKE), "--set", f"output_dir={prepared_smoke.parent}"])
    assert table.loc["all", "no_intent"] == 0 and table.loc["all", "pairs"] > 0
    assert table.loc["all", ["better", "equal", "worse"]].sum() == pytest.approx(1.0)
    assert "response" in table.index and "train pairs of" in capsys.readouterr().out


def test_the_hash_key_in_the_environment_wins_as_in_prep(prepared_smoke: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    # The smoke prep hashed with the recipe's default key. With ENCORE_HASH_KEY set to that key and the
    # recipe's key overridden, pair_labels must hash as prep does (the variable wins): it read the
    # recipe's key alone before, and then found no pair's intent.
    monkeypatch.setenv("ENCORE_HASH_KEY", load_recipe(SMOKE).prep.hash_key)
    table = main([str(SMOKE), "--set", f"output_dir={prepared_smoke.parent}", "--set", "prep.hash_key=other"])
    assert table.loc["all", "no_intent"] == 0 and table.loc["all", "pairs"] > 0

"""`python -m evaluation.pair_labels` on the smoke prep: every train pair's prompt has its logged intent."""

from __future__ import annotations

from pathlib import Path

import pytest

from evaluation.pair_labels import main

pytestmark = pytest.mark.integration

SMOKE = Path(__file__).resolve().parents[2] / "recipes" / "smoke" / "pipeline.yaml"


def test_every_train_pair_is_scored_against_its_intent(prepared_smoke: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    table = main([str(SMOKE), "--set", f"output_dir={prepared_smoke.parent}"])
    assert table.loc["all", "no_intent"] == 0 and table.loc["all", "pairs"] > 0
    assert table.loc["all", ["better", "equal", "worse"]].sum() == pytest.approx(1.0)
    assert "response" in table.index and "train pairs of" in capsys.readouterr().out

"""The flywheel's samples: n seeded answers per request, the first one greedy when asked (`greedy_first`)."""

from __future__ import annotations

from pathlib import Path

import pytest

from encore.config import load_recipe
from encore.flywheel import sampling
from playlist.generate import generate_playlists
from playlist.prompts import Track, render_prompt

ROOT = Path(__file__).resolve().parents[2]
TRACKS = [Track("t1", "Nick Drake", "Pink Moon", "folk", 1972, 0.2), Track("t2", "Can", "Vitamin C", "rock")]


def test_greedy_first_puts_the_greedy_answer_first_and_keeps_the_samples_seeds(
    tiny, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    model, tokenizer = tiny
    monkeypatch.setattr(sampling, "policy_on_device", lambda recipe, adapters: (model, tokenizer))
    recipe = load_recipe(
        ROOT / "recipes" / "smoke" / "pipeline.yaml", ["eval.max_new_tokens=12", "eval.batch_size=2"]
    )
    prompts = [render_prompt(r, [], TRACKS) for r in ("mellow folk", "upbeat rock", "dark jazz")]
    options = {"samples": 3, "temperature": 1.0, "seed": 7}
    sampled = sampling.sample_playlists(recipe, [], prompts, **options)
    anchored = sampling.sample_playlists(recipe, [], prompts, **options, greedy_first=True)
    greedy = generate_playlists(model, tokenizer, prompts, max_new_tokens=12, batch_size=2)
    assert [len(s) for s in anchored] == [3, 3, 3]
    assert [s[0] for s in anchored] == greedy
    assert [s[1:] for s in anchored] == [s[1:] for s in sampled]  # sample j is seeded seed + j either way
    assert [s[0] for s in sampled] != greedy  # at temperature 1 the random model's first sample is not greedy

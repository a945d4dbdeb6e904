"""Reward-model quality: pair accuracy, calibration and agreement with the hidden intent; batched scoring."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from encore.models import resolve_model
from encore.train.lora import load_reward_backbone
from evaluation.tasks.reward_model import expected_calibration_error, reward_quality, reward_scores
from playlist.prompts import Track, render_playlist, render_prompt


def test_docstring_example() -> None:
    scores = reward_quality([1.2, -0.5, 0.3], [0.2, 0.5, 0.3], [1, -1, 0])
    assert scores == pytest.approx(
        {
            "pair_accuracy": 0.5,
            "brier": (0.26894**2 + 0.73106**2 + 0.25) / 3,
            "ece": 2 / 3 * abs(0.5 - 0.73106),
            "reward_margin": 0.0,
            "intent_agreement": 1.0,
            "label_intent_agreement": 0.5,
            "n_intent_pairs": 2.0,
            "n_pairs": 3.0,
        },
        abs=1e-4,
    )


def test_a_sure_and_wrong_model_is_miscalibrated_a_sure_and_right_one_is_not() -> None:
    right = reward_quality([5.0] * 10, [-5.0] * 10)
    wrong = reward_quality([-5.0] * 10, [5.0] * 10)
    assert right["pair_accuracy"] == 1.0 and right["ece"] < 0.01
    assert wrong["pair_accuracy"] == 0.0 and wrong["ece"] > 0.99
    assert wrong["brier"] > 0.99 > 0.01 > right["brier"]
    assert "n_intent_pairs" not in right  # no intent: real logs
    assert reward_quality([1.0], [0.0], [0]) == pytest.approx(
        reward_quality([1.0], [0.0]) | {"n_intent_pairs": 0.0}
    )  # intents that separate no pair: counted, no agreement
    # 70 % sure of the chosen side on every pair, and the chosen side is the label: 30 % under-confident.
    assert expected_calibration_error(np.full(10, 0.7)) == pytest.approx(0.3)


def test_intent_agreement_counts_only_the_pairs_the_intent_separates() -> None:
    scores = reward_quality([1.0, 1.0, 1.0, 0.0], [0.0, 0.0, 0.0, 1.0], [1, 0, None, -1])
    assert scores["n_intent_pairs"] == 2.0
    assert scores["intent_agreement"] == 1.0  # favours chosen on +1, rejected on -1
    assert scores["label_intent_agreement"] == 0.5


def test_bad_inputs() -> None:
    with pytest.raises(ValueError, match="lengths differ"):
        reward_quality([1.0], [1.0, 2.0])
    with pytest.raises(ValueError, match="lengths differ"):
        reward_quality([1.0], [1.0], [1, 1])
    assert reward_quality([], []) == {"n_pairs": 0.0}


CORPUS = [f"Request: {m} {g} please. c{i % 9} | Artist {i % 7} - Song {i % 11}" for i, (m, g) in enumerate(
    (m, g) for m in ("mellow", "upbeat", "dark") for g in ("folk", "rock", "jazz"))] * 20  # fmt: skip
TRACKS = [Track("t1", "Nick Drake", "Pink Moon", "folk", 1972, 0.2), Track("t2", "Can", "Vitamin C", "rock")]


def test_batched_scores_ignore_padding_and_equal_one_forward_pass(tmp_path: Path) -> None:
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ENCORE_CACHE", str(tmp_path))
        path = resolve_model("builtin:tiny", corpus=CORPUS)
        torch.manual_seed(0)
        model, tokenizer = load_reward_backbone(str(path))
    prompt = render_prompt("mellow folk", [], TRACKS)
    short = [{"role": "assistant", "content": render_playlist([TRACKS[0]], TRACKS)}]
    long = [{"role": "assistant", "content": render_playlist(TRACKS, TRACKS)}]
    pairs = [
        {"prompt": prompt, "chosen": short, "rejected": long},
        {"prompt": prompt, "chosen": long, "rejected": short},
    ]
    side = tokenizer.padding_side
    chosen, rejected = reward_scores(model, tokenizer, pairs, batch_size=2)
    assert tokenizer.padding_side == side  # restored
    assert chosen == pytest.approx(rejected[::-1], abs=1e-5)  # the same two sequences, padded differently
    ids = tokenizer(tokenizer.apply_chat_template([*prompt, *long], tokenize=False), add_special_tokens=False)
    with torch.no_grad():
        alone = model(input_ids=torch.tensor([ids["input_ids"]])).logits[0, 0].item()
    assert chosen[1] == pytest.approx(alone, abs=1e-5) and rejected[0] == pytest.approx(alone, abs=1e-5)

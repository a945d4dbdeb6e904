"""Preference-accuracy task: implicit reward margins over held-out pairs, log-probs with the adapter disabled."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from peft import LoraConfig, get_peft_model

from encore.train.data import eval_pairs
from evaluation.tasks.preference_accuracy import (
    pair_logprobs,
    preference_scores,
    reward_margins,
    sequence_logprobs,
)
from playlist.prompts import Track, render_playlist, render_prompt


def test_docstring_example() -> None:
    margins = reward_margins(
        [-10.0, -11.0, -5.0], [-12.0, -10.0, -5.0], [-9.0, -7.0, -6.0], [-8.0, -7.5, -6.0], 0.1
    )
    assert margins == pytest.approx([0.3, -0.15, 0.0])
    assert preference_scores(margins) == pytest.approx(
        {"preference_accuracy": 1 / 3, "reward_margin": 0.05, "n_pairs": 3.0}
    )


def test_accuracy_does_not_depend_on_beta() -> None:
    args = ([-1.0, -2.0], [-1.5, -1.0], [-3.0, -2.0], [-2.0, -2.5])
    small, large = reward_margins(*args, beta=0.01), reward_margins(*args, beta=5.0)
    assert preference_scores(small)["preference_accuracy"] == preference_scores(large)["preference_accuracy"]
    assert large == pytest.approx(small * 500)


def test_bad_inputs() -> None:
    with pytest.raises(ValueError, match="shape"):
        reward_margins([1.0], [1.0, 2.0], [1.0], [1.0], 0.1)
    with pytest.raises(ValueError, match="beta"):
        reward_margins([1.0], [1.0], [1.0], [1.0], 0.0)
    assert preference_scores([]) == {"n_pairs": 0.0}


TRACKS = [Track("t1", "Nick Drake", "Pink Moon", "folk", 1972, 0.2), Track("t2", "Can", "Vitamin C", "rock")]


@pytest.fixture(scope="module")
def pairs() -> list[dict]:
    prompt = render_prompt("mellow folk", [], TRACKS)
    good = [{"role": "assistant", "content": render_playlist([TRACKS[0]], TRACKS)}]
    bad = [{"role": "assistant", "content": render_playlist([TRACKS[1]], TRACKS)}]
    long = [{"role": "assistant", "content": render_playlist(TRACKS, TRACKS)}]
    return [
        {"prompt": prompt, "chosen": good, "rejected": bad},
        {"prompt": prompt, "chosen": long, "rejected": good},
    ]


def test_sequence_logprobs_match_a_manual_sum_and_ignore_padding(tiny, pairs) -> None:  # type: ignore[no-untyped-def]
    model, tokenizer = tiny
    prompts = [p["prompt"] for p in pairs]
    completions = [pairs[0]["chosen"], pairs[1]["chosen"]]  # different lengths: one is padded
    batched = sequence_logprobs(model, tokenizer, prompts, completions, batch_size=2)
    alone = [
        sequence_logprobs(model, tokenizer, [p], [c])[0] for p, c in zip(prompts, completions, strict=True)
    ]
    assert batched == pytest.approx(alone, abs=1e-4)
    # Manual: the completion's tokens are what the template adds after the generation prompt.
    prompt_text = tokenizer.apply_chat_template(prompts[0], add_generation_prompt=True, tokenize=False)
    full_text = tokenizer.apply_chat_template([*prompts[0], *completions[0]], tokenize=False)
    p_ids = tokenizer(prompt_text, add_special_tokens=False)["input_ids"]
    c_ids = tokenizer(full_text[len(prompt_text) :], add_special_tokens=False)["input_ids"]
    ids = torch.tensor([p_ids + c_ids])
    with torch.no_grad():
        logp = torch.log_softmax(model(input_ids=ids).logits[0, :-1].float(), dim=-1)
    manual = sum(logp[len(p_ids) - 1 + j, tok].item() for j, tok in enumerate(c_ids))
    assert batched[0] == pytest.approx(manual, abs=1e-4)
    assert batched[0] < 0


def test_reference_is_the_adapter_disabled(tiny, pairs) -> None:  # type: ignore[no-untyped-def]
    model, tokenizer = tiny
    peft_model = get_peft_model(model, LoraConfig(r=4, lora_alpha=8, target_modules="all-linear"))
    # A fresh LoRA adapter (B = 0) changes nothing: every margin is 0, accuracy 0 (ties are wrong).
    fresh = pair_logprobs(peft_model, tokenizer, pairs)
    assert fresh["policy_chosen"] == pytest.approx(fresh["ref_chosen"], abs=1e-5)
    margins = reward_margins(
        fresh["policy_chosen"], fresh["ref_chosen"], fresh["policy_rejected"], fresh["ref_rejected"], 0.1
    )
    assert preference_scores(np.round(margins, 6))["preference_accuracy"] == 0.0
    # A trained-looking adapter moves the policy but not the reference.
    with torch.no_grad():
        for name, param in peft_model.named_parameters():
            if "lora_B" in name:
                param.normal_(0.0, 0.5)
    moved = pair_logprobs(peft_model, tokenizer, pairs)
    assert moved["ref_chosen"] == pytest.approx(fresh["ref_chosen"], abs=1e-5)
    assert not np.allclose(moved["policy_chosen"], moved["ref_chosen"], atol=1e-3)
    with pytest.raises(TypeError, match="PEFT"):
        pair_logprobs(torch.nn.Linear(2, 2), tokenizer, pairs)


def test_eval_pairs_are_the_eval_split_in_pair_id_order_capped(tmp_path: Path) -> None:
    (tmp_path / "pairs").mkdir()
    pd.DataFrame({"pair_id": ["d", "b", "a", "c"], "split": ["eval", "train", "eval", "eval"]}).to_parquet(
        tmp_path / "pairs" / "part-0.parquet"
    )
    assert [p["pair_id"] for p in eval_pairs(tmp_path, None)] == ["a", "c", "d"]
    assert [p["pair_id"] for p in eval_pairs(tmp_path, 2)] == ["a", "c"]
    assert eval_pairs(tmp_path, 0) == []
    assert eval_pairs(tmp_path / "missing", None) == []

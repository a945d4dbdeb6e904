"""Reward model quality: on held-out users' pairs, does the reward model rank the chosen side first, and how sure?

Example (scores r from the reward model's head; p = σ(r(c) − r(r)), Bradley–Terry)::

    pair   r(c)   r(r)    p      ranks chosen first   intent (chosen fits …)
    1       1.2    0.2    0.73   yes                  better   → agrees with the intent
    2      -0.5    0.5    0.27   no                   worse    → agrees with the intent
    3       0.3    0.3    0.50   half (a tie)         equal    → not counted for the intent

    pair_accuracy = (1 + 0 + 0.5) / 3 = 0.5
    brier         = mean((1 − p)²) = (0.072 + 0.534 + 0.25) / 3 = 0.286
    intent_agreement = 2 / 2 = 1.0; label_intent_agreement = 1 / 2 (the labels: chosen better in pair 1)

Scoring rule: a pair counts as ranked right when r(chosen) > r(rejected), half when they tie. The
Bradley–Terry probability p = σ(r(c) − r(r)) is the model's belief that the chosen side is preferred;
``brier`` is the mean of (1 − p)², and ``ece`` bins the pairs by the model's confidence
max(p, 1 − p) into ten equal bins over [0.5, 1] and averages |accuracy − confidence| per bin, weighted by
the bin's share of pairs (accuracy: the side it favours is the chosen one). On simulated data the hidden
intent says which side fits the request better (``sign`` +1, −1, or 0 when they fit equally;
:func:`evaluation.pair_labels.pair_signs`): ``intent_agreement`` is the share of the pairs the
intent separates where the reward model favours the side that fits better, and ``label_intent_agreement``
the share where the logged label (chosen) is that side, the figure the reward model is there to beat.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch

ECE_BINS = 10


def reward_quality(
    chosen: Sequence[float] | np.ndarray,
    rejected: Sequence[float] | np.ndarray,
    signs: Sequence[int | None] | None = None,
) -> dict[str, float]:
    """The scores of the module docstring, from each pair's reward of its chosen and rejected side.

    Args:
        chosen: the reward model's score of each pair's chosen side.
        rejected: of its rejected side.
        signs: per pair, how the chosen side fits the hidden intent against the rejected side (+1 better,
            0 equally, −1 worse, None unknown); None when there is no intent (real logs).

    Returns:
        ``pair_accuracy``, ``brier``, ``ece``, ``reward_margin`` (mean r(c) − r(r)) and ``n_pairs`` (the
        stage logs them as ``reward/<name>``); with signs also ``n_intent_pairs``, the pairs the intent
        separates, and where there are any ``intent_agreement`` and ``label_intent_agreement``. No pairs:
        ``n_pairs`` only.

    Raises:
        ValueError: the sequences differ in length.
    """
    c, r = np.asarray(chosen, dtype=np.float64), np.asarray(rejected, dtype=np.float64)
    if c.shape != r.shape or (signs is not None and len(signs) != c.size):
        raise ValueError(f"lengths differ: {c.size} chosen, {r.size} rejected, {len(signs or [])} signs")
    if c.size == 0:
        return {"n_pairs": 0.0}
    margin = c - r
    p = 1.0 / (1.0 + np.exp(-margin))
    correct = np.where(margin > 0, 1.0, np.where(margin < 0, 0.0, 0.5))
    out = {
        "pair_accuracy": float(correct.mean()),
        "brier": float(np.mean((1.0 - p) ** 2)),
        "ece": expected_calibration_error(p),
        "reward_margin": float(margin.mean()),
        "n_pairs": float(c.size),
    }
    if signs is None:
        return out
    separated = [(m, s) for m, s in zip(margin, signs, strict=True) if s in (1, -1)]
    out["n_intent_pairs"] = float(len(separated))
    if separated:
        out["intent_agreement"] = float(np.mean([m * s > 0 for m, s in separated]))
        out["label_intent_agreement"] = float(np.mean([s > 0 for _, s in separated]))
    return out


def expected_calibration_error(p_chosen: np.ndarray, bins: int = ECE_BINS) -> float:
    """ECE of Bradley–Terry probabilities that the chosen side wins (the label), binned by confidence."""
    confidence = np.maximum(p_chosen, 1.0 - p_chosen)
    right = np.where(p_chosen > 0.5, 1.0, np.where(p_chosen < 0.5, 0.0, 0.5))
    edges = np.linspace(0.5, 1.0, bins + 1)
    which = np.clip(np.digitize(confidence, edges[1:-1]), 0, bins - 1)
    ece = 0.0
    for b in range(bins):
        members = which == b
        if members.any():
            ece += members.mean() * abs(right[members].mean() - confidence[members].mean())
    return float(ece)


def reward_scores(
    model: Any, tokenizer: Any, pairs: Sequence[Mapping[str, Any]], *, batch_size: int = 8
) -> tuple[np.ndarray, np.ndarray]:
    """The reward model's score of each pair's chosen and rejected conversation.

    Each side is the prompt's messages followed by the answer, rendered with the chat template as
    TRL's RewardTrainer renders it, right-padded (a sequence-classification head reads the last
    non-pad token).

    Args:
        model: a sequence-classification model with one output (the reward stage's).
        tokenizer: its tokenizer, with a chat template.
        pairs: rows with ``prompt``, ``chosen`` and ``rejected`` (TRL's conversational pair format).
        batch_size: sequences per forward pass.
    """
    texts = {
        side: [tokenizer.apply_chat_template([*p["prompt"], *p[side]], tokenize=False) for p in pairs]
        for side in ("chosen", "rejected")
    }
    padding_side, was_training = tokenizer.padding_side, model.training
    tokenizer.padding_side = "right"
    model.eval()
    scores: dict[str, list[float]] = {"chosen": [], "rejected": []}
    try:
        with torch.inference_mode():
            for side, side_texts in texts.items():
                for start in range(0, len(side_texts), batch_size):
                    enc = tokenizer(
                        side_texts[start : start + batch_size],
                        return_tensors="pt",
                        padding=True,
                        add_special_tokens=False,
                    ).to(model.device)
                    scores[side] += model(**enc).logits[:, 0].float().cpu().tolist()
    finally:
        tokenizer.padding_side = padding_side
        model.train(was_training)
    return np.asarray(scores["chosen"]), np.asarray(scores["rejected"])

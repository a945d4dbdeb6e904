"""Preference accuracy: on held-out pairs, does the policy's implicit reward prefer the chosen answer?

Example (β = 0.1; summed completion log-probs, policy π and reference π_ref)::

    pair   logπ(c)  logπref(c)  logπ(r)  logπref(r)   margin
    1      -10.0    -12.0       -9.0     -8.0          0.1·[2 − (−1)] = 0.3    correct
    2      -11.0    -10.0       -7.0     -7.5          0.1·[−1 − 0.5] = −0.15  wrong
    3       -5.0     -5.0       -6.0     -6.0          0.0                     wrong (a tie)

    preference_accuracy = 1/3, reward_margin = mean(0.3, −0.15, 0.0) = 0.05

Scoring rule: the implicit reward margin of a pair is
``β·[(logπ(c) − logπref(c)) − (logπ(r) − logπref(r))]`` with summed log-probabilities of the completion
tokens given the prompt (DPO's implicit reward); a pair counts as correct when the margin is strictly
positive, so a policy equal to its reference scores 0.0. ``reward_margin`` is the mean margin. The sign,
hence the accuracy, does not depend on β. The reference is the policy with its LoRA adapter disabled:
for a preference stage that is the SFT model (its start), as in training.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch


def reward_margins(
    policy_chosen: Sequence[float] | np.ndarray,
    ref_chosen: Sequence[float] | np.ndarray,
    policy_rejected: Sequence[float] | np.ndarray,
    ref_rejected: Sequence[float] | np.ndarray,
    beta: float,
) -> np.ndarray:
    """The implicit reward margin of each pair (see the module docstring).

    Raises:
        ValueError: the arrays differ in length, or ``beta`` is not positive.
    """
    arrays = [
        np.asarray(a, dtype=np.float64) for a in (policy_chosen, ref_chosen, policy_rejected, ref_rejected)
    ]
    if len({a.shape for a in arrays}) != 1:
        raise ValueError(f"log-prob arrays differ in shape: {[a.shape for a in arrays]}")
    if beta <= 0:
        raise ValueError(f"beta must be positive, got {beta}")
    pc, rc, pr, rr = arrays
    return beta * ((pc - rc) - (pr - rr))


def preference_scores(margins: Sequence[float] | np.ndarray) -> dict[str, float]:
    """``preference_accuracy`` (margin > 0), ``reward_margin`` (mean) and ``n_pairs``; empty: ``n_pairs`` only."""
    m = np.asarray(margins, dtype=np.float64)
    if m.size == 0:
        return {"n_pairs": 0.0}
    return {
        "preference_accuracy": float(np.mean(m > 0)),
        "reward_margin": float(np.mean(m)),
        "n_pairs": float(m.size),
    }


def _encode(
    tokenizer: Any, prompt: list[dict[str, str]], completion: list[dict[str, str]]
) -> tuple[list[int], int]:
    # The completion's text is what the chat template adds after the generation prompt, so the
    # tokens scored are the ones the model generates (end-of-turn marker included), as in training.
    prompt_text = tokenizer.apply_chat_template(prompt, add_generation_prompt=True, tokenize=False)
    full_text = tokenizer.apply_chat_template([*prompt, *completion], tokenize=False)
    if not full_text.startswith(prompt_text):
        raise ValueError("the chat template renders the prompt differently with and without the completion")
    prompt_ids = tokenizer(prompt_text, add_special_tokens=False)["input_ids"]
    completion_ids = tokenizer(full_text[len(prompt_text) :], add_special_tokens=False)["input_ids"]
    return [*prompt_ids, *completion_ids], len(prompt_ids)


def sequence_logprobs(
    model: Any,
    tokenizer: Any,
    prompts: Sequence[list[dict[str, str]]],
    completions: Sequence[list[dict[str, str]]],
    *,
    batch_size: int = 8,
) -> np.ndarray:
    """Summed log-probability of each completion's tokens given its prompt, under ``model`` as it is.

    Args:
        model: a causal LM (transformers or PEFT), used in eval mode; its mode is restored.
        tokenizer: its tokenizer, with a chat template.
        prompts: conversations (lists of ``{role, content}``).
        completions: the assistant messages to score, one list per prompt.
        batch_size: sequences per forward pass (right-padded).

    Returns:
        One float per prompt.
    """
    if len(prompts) != len(completions):
        raise ValueError(f"{len(prompts)} prompts for {len(completions)} completions")
    encoded = [_encode(tokenizer, p, c) for p, c in zip(prompts, completions, strict=True)]
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    out = np.zeros(len(encoded))
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            for start in range(0, len(encoded), batch_size):
                batch = encoded[start : start + batch_size]
                width = max(len(ids) for ids, _ in batch)
                ids = torch.full((len(batch), width), pad, dtype=torch.long)
                mask = torch.zeros((len(batch), width), dtype=torch.long)
                scored = torch.zeros((len(batch), width), dtype=torch.bool)
                for i, (seq, n_prompt) in enumerate(batch):
                    ids[i, : len(seq)] = torch.tensor(seq)
                    mask[i, : len(seq)] = 1
                    scored[i, n_prompt : len(seq)] = True
                ids, mask = ids.to(model.device), mask.to(model.device)
                logits = model(input_ids=ids, attention_mask=mask).logits[:, :-1].float()
                logp = torch.log_softmax(logits, dim=-1).gather(-1, ids[:, 1:, None]).squeeze(-1)
                total = (logp * scored[:, 1:].to(logp.device)).sum(dim=-1)
                out[start : start + len(batch)] = total.cpu().numpy()
    finally:
        model.train(was_training)
    return out


def pair_logprobs(
    model: Any, tokenizer: Any, pairs: Sequence[Mapping[str, Any]], *, batch_size: int = 8
) -> dict[str, np.ndarray]:
    """Log-probs of each pair's chosen and rejected answers under a PEFT policy and its reference.

    The reference is the same model with its adapter disabled (``model.disable_adapter()``), so no
    second copy of the weights is loaded.

    Args:
        model: a ``peft.PeftModel``.
        tokenizer: its tokenizer.
        pairs: rows with ``prompt``, ``chosen`` and ``rejected`` (TRL's conversational pair format).
        batch_size: sequences per forward pass.

    Returns:
        ``policy_chosen``, ``ref_chosen``, ``policy_rejected``, ``ref_rejected``: one value per pair.

    Raises:
        TypeError: ``model`` has no adapter to disable.
    """
    if not hasattr(model, "disable_adapter"):
        raise TypeError("preference accuracy needs a PEFT model: its reference is the adapter disabled")
    prompts = [list(p["prompt"]) for p in pairs]
    chosen = [list(p["chosen"]) for p in pairs]
    rejected = [list(p["rejected"]) for p in pairs]
    result = {
        "policy_chosen": sequence_logprobs(model, tokenizer, prompts, chosen, batch_size=batch_size),
        "policy_rejected": sequence_logprobs(model, tokenizer, prompts, rejected, batch_size=batch_size),
    }
    with model.disable_adapter():
        result["ref_chosen"] = sequence_logprobs(model, tokenizer, prompts, chosen, batch_size=batch_size)
        result["ref_rejected"] = sequence_logprobs(model, tokenizer, prompts, rejected, batch_size=batch_size)
    return result

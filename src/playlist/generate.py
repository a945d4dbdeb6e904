"""Batched playlist generation from chat prompts: left padding, KV cache, greedy or seeded sampling.

Example::

    >>> completions = generate_playlists(model, tokenizer, [render_prompt("mellow folk", [], tracks)])
    >>> completions[0]
    'c1 | Nick Drake - Pink Moon\\nc3 | Low - Sunflower'
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from tqdm.auto import tqdm
from transformers import GenerationConfig


def _eos_ids(model: Any, tokenizer: Any) -> list[int]:
    # Chat models often stop on an end-of-turn token that only the generation config names.
    ids: list[int] = []
    for source in (getattr(model.generation_config, "eos_token_id", None), tokenizer.eos_token_id):
        for i in [source] if isinstance(source, int) else source or []:
            if i not in ids:
                ids.append(i)
    return ids


def _generation_config(
    model: Any, tokenizer: Any, max_new_tokens: int, do_sample: bool, temperature: float
) -> GenerationConfig:
    # generate() fills every unset field from the model's own generation config, so the decoding
    # knobs are pinned: a shipped top_p or repetition penalty must not change what base, SFT and
    # DPO models are compared on.
    eos = _eos_ids(model, tokenizer)
    return GenerationConfig(
        max_new_tokens=max_new_tokens,
        do_sample=do_sample,
        temperature=temperature if do_sample else 1.0,
        top_k=0 if do_sample else 50,  # 0 disables top-k; 50 is the ignored greedy default (no warning)
        top_p=1.0,
        repetition_penalty=1.0,
        use_cache=True,
        eos_token_id=eos,
        pad_token_id=tokenizer.pad_token_id if tokenizer.pad_token_id is not None else eos[0],
    )


def generate_playlists(
    model: Any,
    tokenizer: Any,
    prompts: Sequence[list[dict[str, str]]],
    *,
    max_new_tokens: int = 256,
    batch_size: int = 16,
    do_sample: bool = False,
    temperature: float = 1.0,
    seed: int = 0,
) -> list[str]:
    """Generate one completion per chat prompt, in batches.

    Prompts are rendered with the tokenizer's chat template (with the generation prompt), sorted by
    length so that batches hold similar lengths, left-padded, and generated with the KV cache until
    eos or ``max_new_tokens``. Greedy decoding gives the same completion for a prompt alone or in a
    batch. The model's train/eval mode and the tokenizer's padding side are restored afterwards.

    Args:
        model: a causal LM (transformers or PEFT).
        tokenizer: its tokenizer, with a chat template.
        prompts: conversations as lists of ``{role, content}`` messages.
        max_new_tokens: the most tokens generated per completion.
        batch_size: prompts per forward pass.
        do_sample: sample instead of greedy decoding.
        temperature: sampling temperature (only with ``do_sample``).
        seed: seeds sampling; the caller's global torch RNG state is left untouched.

    Returns:
        The decoded new tokens of each prompt, special tokens removed, in the order of ``prompts``.
    """
    if not prompts:
        return []
    texts = [
        tokenizer.apply_chat_template(list(p), add_generation_prompt=True, tokenize=False) for p in prompts
    ]
    # The template already holds any special tokens (bos, turn markers): do not add them twice.
    lengths = [len(tokenizer(t, add_special_tokens=False)["input_ids"]) for t in texts]
    order = sorted(range(len(texts)), key=lambda i: -lengths[i])
    config = _generation_config(model, tokenizer, max_new_tokens, do_sample, temperature)
    batches = [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
    devices = [model.device] if model.device.type == "cuda" else []

    outputs: list[str] = [""] * len(texts)
    padding_side, pad_token, was_training = tokenizer.padding_side, tokenizer.pad_token, model.training
    tokenizer.padding_side = "left"
    if pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    model.eval()
    try:
        with torch.random.fork_rng(devices=devices), torch.inference_mode():
            torch.manual_seed(seed)
            for batch in tqdm(batches, desc="generate", disable=len(batches) <= 1):
                enc = tokenizer(
                    [texts[i] for i in batch], return_tensors="pt", padding=True, add_special_tokens=False
                ).to(model.device)
                out = model.generate(**enc, generation_config=config)
                new_tokens = out[:, enc["input_ids"].shape[1] :]
                for i, text in zip(
                    batch, tokenizer.batch_decode(new_tokens, skip_special_tokens=True), strict=True
                ):
                    outputs[i] = text.strip()
    finally:
        tokenizer.padding_side = padding_side
        if pad_token is None:
            tokenizer.pad_token = None
        model.train(was_training)
    return outputs

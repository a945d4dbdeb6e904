"""Batched generation with a tiny random Llama and a tokenizer trained in the test (offline)."""

from __future__ import annotations

import copy

import pytest
import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import GenerationConfig, LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

from playlist.generate import generate_playlists
from playlist.prompts import Track, render_prompt

pytestmark = pytest.mark.integration

CHATML = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)

TRACKS = [
    Track("t1", "Nick Drake", "Pink Moon", "folk", 1972, 0.2),
    Track("t2", "Low", "Sunflower", "slowcore", 2001, 0.3),
    Track("t3", "Daft Punk", "One More Time", "house", 2000, 0.9),
]


def _tokenizer() -> PreTrainedTokenizerFast:
    tok = Tokenizer(models.BPE(unk_token=None))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    corpus = [m["content"] for m in render_prompt("mellow folk for a rainy night", ["more piano"], TRACKS)]
    corpus += ["c1 | Nick Drake - Pink Moon", "c2 | Low - Sunflower", "c3 | Daft Punk - One More Time"]
    trainer = trainers.BpeTrainer(
        vocab_size=300,
        special_tokens=["<pad>", "<|im_start|>", "<|im_end|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tok.train_from_iterator(corpus, trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, eos_token="<|im_end|>", pad_token="<pad>", chat_template=CHATML
    )


@pytest.fixture(scope="module")
def tiny() -> tuple[LlamaForCausalLM, PreTrainedTokenizerFast]:
    tokenizer = _tokenizer()
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=1024,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
        bos_token_id=None,
        # Large random weights, so that the output depends on the prompt and not only on its last tokens.
        initializer_range=0.5,
    )
    torch.manual_seed(0)
    return LlamaForCausalLM(config), tokenizer


def _prompts() -> list[list[dict[str, str]]]:
    # Different lengths, so a batch needs padding.
    return [
        render_prompt("mellow folk", [], TRACKS),
        render_prompt("something to dance to after a long week at work", ["more piano", "no rap"], TRACKS),
        render_prompt("rainy night", ["more piano"], TRACKS[:1]),
        render_prompt("open generation", [], []),
        render_prompt("x", [], TRACKS[1:]),
    ]


def test_batched_greedy_equals_sequential(tiny):
    model, tokenizer = tiny
    prompts = _prompts()
    batched = generate_playlists(model, tokenizer, prompts, max_new_tokens=8, batch_size=3)
    alone = [generate_playlists(model, tokenizer, [p], max_new_tokens=8, batch_size=1)[0] for p in prompts]
    assert len(batched) == len(prompts)
    assert batched == alone
    assert any(batched), "a random model should produce some text"
    assert len(set(batched)) > 1, "different prompts should give different completions"


def _manual_greedy(model, tokenizer, prompt, max_new_tokens: int) -> str:
    text = tokenizer.apply_chat_template(prompt, add_generation_prompt=True, tokenize=False)
    ids = tokenizer(text, add_special_tokens=False, return_tensors="pt")["input_ids"]
    new: list[int] = []
    with torch.no_grad():
        for _ in range(max_new_tokens):
            token = int(
                model(torch.cat([ids, torch.tensor([new], dtype=torch.long)], dim=1)).logits[0, -1].argmax()
            )
            new.append(token)
            if token == tokenizer.eos_token_id:
                break
    return tokenizer.decode(new, skip_special_tokens=True).strip()


def test_greedy_matches_argmax_without_cache_despite_model_sampling_defaults(tiny):
    model, tokenizer = tiny
    shipped = copy.deepcopy(model.generation_config)
    prompts = _prompts()[:3]
    expected = [_manual_greedy(model, tokenizer, p, 8) for p in prompts]
    model.generation_config = GenerationConfig(
        do_sample=True, temperature=5.0, top_k=3, repetition_penalty=2.0
    )
    try:
        assert generate_playlists(model, tokenizer, prompts, max_new_tokens=8, batch_size=2) == expected
    finally:
        model.generation_config = shipped


def test_restores_tokenizer_and_model_state(tiny):
    model, tokenizer = tiny
    model.train()
    tokenizer.padding_side = "right"
    generate_playlists(model, tokenizer, _prompts()[:2], max_new_tokens=4)
    assert model.training
    assert tokenizer.padding_side == "right"
    model.eval()


def test_seeded_sampling_is_reproducible(tiny):
    model, tokenizer = tiny
    prompts = _prompts()
    kwargs = {"max_new_tokens": 8, "batch_size": 2, "do_sample": True, "temperature": 2.0}
    rng_before = torch.get_rng_state()
    first = generate_playlists(model, tokenizer, prompts, seed=1, **kwargs)
    assert torch.equal(torch.get_rng_state(), rng_before), "the caller's RNG must be left untouched"
    assert generate_playlists(model, tokenizer, prompts, seed=1, **kwargs) == first
    assert generate_playlists(model, tokenizer, prompts, seed=2, **kwargs) != first
    assert generate_playlists(model, tokenizer, prompts, max_new_tokens=8) != first


def test_empty_prompt_list(tiny):
    model, tokenizer = tiny
    assert generate_playlists(model, tokenizer, []) == []

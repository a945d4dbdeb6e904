"""``builtin:tiny``: a small random-weight Llama and a domain BPE tokenizer trained here, for tests, CI and the demo.

The weights are random, so the base knows nothing of the task; the smoke recipe trains it in full (a
full-rank adapter over every linear layer, and the embeddings and output head themselves). Within the smoke
budget it learns the answer format; copying the lines it names is not reliable yet (it repeats tracks, and
on some splits invents them). The sizes, what was tried and the figures: docs/benchmarks.md, "A smoke model
that learns".
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator
from pathlib import Path

import torch
from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, processors, trainers
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

from encore.models.chatml import chatml_template
from playlist.prompts import PROMPT_FORMAT, SYSTEM_PROMPT, Track, render_playlist, render_prompt

# Bump when the architecture, tokenizer recipe or corpus changes; the prompt format is part of it, so a
# model cached for another format is never picked up.
TINY_VERSION = f"v3-p{PROMPT_FORMAT}"  # v2: the v1 architecture with the new tokenizer
VOCAB_SIZE = 4096
MAX_CORPUS_CHARS = 4_000_000  # bounds the tokenizer training time (~5 s on 2 cores) whatever the corpus size
SPECIAL_TOKENS = ["<|pad|>", "<|im_start|>", "<|im_end|>"]
# GPT-2's pre-tokenizer pattern with candidate ids (`c12`) kept whole, so BPE learns each id as one
# token rather than `c` + `12`, whose digits also occur in years and energies. A key of one token is what
# an induction head matches on; in the lab it alone did not move grounding (0.54 → 0.52, docs/benchmarks.md).
PRE_TOKENIZER_PATTERN = (
    r"(?<![\p{L}\p{N}])c\d+|'(?:[sdmt]|ll|ve|re)| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"
)

_EXAMPLE_TRACKS = [
    Track("t1", "Nick Drake", "Pink Moon", "folk", 1972, 0.2, 0.25),
    Track("t2", "Daft Punk", "One More Time", "electronic", 2000, 0.9, 0.85),
    Track("t3", "Miles Davis", "So What", "jazz", 1959, 0.3, 0.45),
    Track("t4", "Nirvana", "Come as You Are", "rock", 1991, 0.7, 0.3),
]


def _prompt_texts() -> Iterator[str]:
    """The system prompt and a few rendered prompts and answers, so the format tokenises compactly."""
    yield SYSTEM_PROMPT
    for request, history, chosen in [
        ("mellow folk for a rainy evening", [], _EXAMPLE_TRACKS[:1]),
        ("upbeat songs for a run", ["something with energy"], _EXAMPLE_TRACKS[1:2] + _EXAMPLE_TRACKS[3:]),
        ("late night jazz", [], _EXAMPLE_TRACKS[2:3]),
    ]:
        for message in render_prompt(request, history, _EXAMPLE_TRACKS):
            yield message["content"]
        yield render_playlist(chosen, _EXAMPLE_TRACKS)


def _take_chars(texts: Iterable[str], limit: int) -> Iterator[str]:
    """The leading texts of ``texts`` up to about ``limit`` characters."""
    total = 0
    for text in texts:
        if total >= limit:
            return
        total += len(text)
        yield text


def _default_corpus(seed: int) -> Iterable[str]:
    # Imported lazily: the simulator is heavier than this module and only needed to build once.
    from playlist.simulator import corpus_texts

    return corpus_texts(seed)


def train_tokenizer(texts: Iterable[str], vocab_size: int = VOCAB_SIZE) -> PreTrainedTokenizerFast:
    """Train a byte-level BPE tokenizer with the ChatML special tokens and chat template.

    Args:
        texts: Training corpus.
        vocab_size: Target vocabulary size, special tokens included.

    Returns:
        A fast tokenizer: eos ``<|im_end|>``, pad ``<|pad|>``, no bos.
    """
    backend = Tokenizer(models.BPE())
    backend.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(PRE_TOKENIZER_PATTERN), behavior="isolated"),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    backend.decoder = decoders.ByteLevel()
    # trim_offsets=False keeps character offsets exact, which assistant-token masks rely on.
    backend.post_processor = processors.ByteLevel(trim_offsets=False)
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    backend.train_from_iterator(texts, trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=backend,
        eos_token="<|im_end|>",
        pad_token="<|pad|>",
        model_max_length=2048,
        chat_template=chatml_template(),
    )


def tiny_config(tokenizer: PreTrainedTokenizerFast) -> LlamaConfig:
    """The tiny Llama architecture for ``tokenizer``'s vocabulary (about 1.1M weights, most in the embeddings).

    Four layers of 128: copying the line of a named candidate takes an induction circuit (a head that finds
    the id in the prompt, one that copies what follows); v1's two layers of 64 through r=8 adapters learnt
    nothing, and these learn the format and grounding on some splits (docs/benchmarks.md). Untied embeddings, so that the recipe can train the input embeddings and the output head as
    two modules beside the adapters (PEFT `modules_to_save`).
    """
    return LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=128,
        num_hidden_layers=4,
        num_attention_heads=4,
        num_key_value_heads=4,
        intermediate_size=256,
        max_position_embeddings=2048,
        tie_word_embeddings=False,
        bos_token_id=tokenizer.get_vocab()["<|im_start|>"],
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )


def build_tiny(out_dir: Path, corpus: Iterable[str] | None = None, seed: int = 0) -> None:
    """Write the tiny model (safetensors), its config and tokenizer into ``out_dir``.

    Args:
        out_dir: An existing, empty directory.
        corpus: Tokenizer training texts; defaults to ``playlist.simulator.corpus_texts(seed)``.
        seed: Seed of the default corpus and of the random weights.
    """
    texts = corpus if corpus is not None else _default_corpus(seed)
    tokenizer = train_tokenizer(itertools.chain(_prompt_texts(), _take_chars(texts, MAX_CORPUS_CHARS)))
    # fork_rng so that building the model does not change the caller's random state.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = LlamaForCausalLM(tiny_config(tokenizer))
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)

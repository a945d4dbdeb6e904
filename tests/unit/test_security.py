"""Security defaults: no remote code unless asked, safetensors weights only, unsafe names rejected."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

from encore.config import RecipeError, load_recipe
from encore.models import load_model, resolve_model

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def tiny_dir() -> Path:
    return Path(resolve_model("builtin:tiny"))


def _copy_model(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


def test_recipes_leave_remote_code_off() -> None:
    for path in sorted((ROOT / "recipes").rglob("*.yaml")):
        if "accelerate" in path.parts:
            continue  # accelerate configs are not recipes
        assert load_recipe(path, check_args=False).trust_remote_code is False, path


def test_custom_code_in_a_model_dir_is_refused_without_trust_remote_code(
    tiny_dir: Path, tmp_path: Path
) -> None:
    model_dir = _copy_model(tiny_dir, tmp_path / "custom")
    marker = tmp_path / "executed"
    (model_dir / "evil_config.py").write_text(
        f"open({str(marker)!r}, 'w').write('ran')\n"
        "from transformers import LlamaConfig\n"
        "class EvilConfig(LlamaConfig):\n    model_type = 'evil'\n"
    )
    config = json.loads((model_dir / "config.json").read_text())
    # An architecture transformers does not know: only the directory's own code could load it.
    config["model_type"] = "evil"
    config["auto_map"] = {"AutoConfig": "evil_config.EvilConfig"}
    (model_dir / "config.json").write_text(json.dumps(config))
    with pytest.raises(ValueError, match="trust_remote_code"):
        load_model(str(model_dir))
    assert not marker.exists()  # the model's code never ran


def test_pickled_weights_are_never_loaded(tiny_dir: Path, tmp_path: Path) -> None:
    model_dir = _copy_model(tiny_dir, tmp_path / "pickled")
    from safetensors.torch import load_file

    weights = load_file(str(model_dir / "model.safetensors"))
    (model_dir / "model.safetensors").unlink()
    torch.save(weights, model_dir / "pytorch_model.bin")  # a pickle: loading it could run code
    with pytest.raises(OSError, match="safetensors"):
        load_model(str(model_dir))


@pytest.mark.parametrize(
    "override",
    ["name=../escape", "name=a/b", "name=..", r"name=a\\b", "register.name=../model", "register.name=x/y"],
)
def test_names_with_path_separators_or_dot_dot_are_rejected(override: str) -> None:
    with pytest.raises(RecipeError):
        load_recipe(ROOT / "recipes/smoke/pipeline.yaml", [override], check_args=False)

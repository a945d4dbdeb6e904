"""Recipes: every shipped recipe parses; wrong keys and types fail early, naming file and key."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from encore.config import RecipeError, flat_params, load_recipe

ROOT = Path(__file__).resolve().parents[2]
RECIPES = sorted((ROOT / "recipes").rglob("pipeline*.yaml"))
SMOKE = ROOT / "recipes" / "smoke" / "pipeline.yaml"


def test_recipes_exist() -> None:
    assert SMOKE in RECIPES
    assert ROOT / "recipes" / "smollm2-135m" / "cpu" / "pipeline.yaml" in RECIPES


@pytest.mark.parametrize("path", RECIPES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_recipe_parses_with_its_trl_args(path: Path) -> None:
    recipe = load_recipe(path)
    assert recipe.name
    # Every key the YAML sets is read by the typed config (nothing silently ignored).
    raw = yaml.safe_load(path.read_text())
    dumped = recipe.model_dump(mode="json", by_alias=True)

    def keys(d: dict, prefix: str = "") -> set[str]:
        out = set()
        for k, v in d.items():
            out.add(prefix + k)
            if isinstance(v, dict) and k != "args":
                out |= keys(v, prefix + k + ".")
        return out

    assert keys(raw) <= keys(dumped)


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "recipe.yaml"
    path.write_text(text)
    return path


def test_unknown_top_level_key_names_file_and_key(tmp_path: Path) -> None:
    path = write(tmp_path, "name: x\nbase_model: builtin:tiny\nprep:\n  eval_fractio: 0.1\n")
    with pytest.raises(RecipeError, match=r"recipe\.yaml: unknown key prep\.eval_fractio"):
        load_recipe(path)


def test_wrong_type_names_key(tmp_path: Path) -> None:
    path = write(tmp_path, "name: x\nbase_model: builtin:tiny\nseed: many\n")
    with pytest.raises(RecipeError, match=r"recipe\.yaml: seed: .*integer"):
        load_recipe(path)


def test_unknown_trl_arg_names_key_and_trl_class() -> None:
    with pytest.raises(RecipeError, match=r"unknown key dpo\.args\.betta .*DPOConfig"):
        load_recipe(SMOKE, ["dpo.args.betta=0.1"])


def test_wrongly_typed_trl_arg() -> None:
    with pytest.raises(RecipeError, match=r"sft\.args\.learning_rate='fast'"):
        load_recipe(SMOKE, ["sft.args.learning_rate=fast"])


def test_overrides_use_dotted_keys_and_yaml_values() -> None:
    recipe = load_recipe(SMOKE, ["sft.args.num_train_epochs=3", "eval.models=[base, dpo]", "seed=7"])
    assert recipe.sft.args["num_train_epochs"] == 3
    assert recipe.eval.models == ["base", "dpo"]
    assert recipe.seed == 7


def test_malformed_override() -> None:
    with pytest.raises(RecipeError, match=r"section\.key=value"):
        load_recipe(SMOKE, ["seed"])


def test_env_tracking_uri_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    recipe = load_recipe(SMOKE)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    assert recipe.tracking_uri == "sqlite:///mlruns/mlflow.db"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:5999")
    assert recipe.tracking_uri == "http://127.0.0.1:5999"


def test_names_with_path_separators_are_rejected(tmp_path: Path) -> None:
    for bad in ("../x", "a/b", ".hidden"):
        with pytest.raises(RecipeError, match="name"):
            load_recipe(write(tmp_path, f"name: '{bad}'\nbase_model: builtin:tiny\n"))
    with pytest.raises(RecipeError, match=r"register\.name"):
        load_recipe(SMOKE, ["register.name=../../evil"])


def test_missing_log_files_are_named(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "name: x\nbase_model: builtin:tiny\ndata:\n  source: logs\n  logs:\n"
        "    responses: nope.jsonl\n    interactions: nope2.jsonl\n    catalog: nope3.jsonl\n",
    )
    with pytest.raises(RecipeError, match=r"data\.logs\.responses: nope\.jsonl does not exist"):
        load_recipe(path)


def test_hash_key_never_in_params() -> None:
    params = flat_params(load_recipe(SMOKE))
    assert "prep.hash_key" not in params
    assert params["sft.args.learning_rate"] == "0.003"


def test_bad_recipe_fails_before_spark_or_torch_start(tmp_path: Path) -> None:
    path = write(tmp_path, "name: x\nbase_model: builtin:tiny\nsft:\n  argz: {}\n")
    done = subprocess.run(
        [sys.executable, "-m", "encore.cli", "pipeline", str(path)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=120,
    )
    assert done.returncode == 2
    assert "unknown key sft.argz" in done.stderr
    assert not (tmp_path / "outputs").exists() and not (tmp_path / "mlruns").exists()
    probe = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys\nfrom encore.config import load_recipe, RecipeError\n"
            f"try:\n    load_recipe({str(path)!r})\nexcept RecipeError:\n    pass\n"
            "print('torch' in sys.modules, 'pyspark' in sys.modules)",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert probe.stdout.split() == ["False", "False"]


def test_cpu_precision_default_fills_only_what_the_recipe_leaves_out(monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    from encore.train.run import trl_args

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert trl_args({"learning_rate": 1.0}) == {"bf16": False, "use_cpu": True, "learning_rate": 1.0}
    assert trl_args({"bf16": True})["bf16"] is True
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert trl_args({"learning_rate": 1.0}) == {"learning_rate": 1.0}

"""The layer contract of pyproject.toml's `[tool.importlinter]`, checked on every test run, and the size rule.

`playlist` is the ground floor, `data_prep` and `evaluation` sit on it and not on each other, `encore`
is the top, no package has an import circle, and encore's library (train, models, registry) never reads
the recipe or the CLI. The contract must also catch what it is there for:
a copy of the tree with one forbidden import added breaks it.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = [ROOT / "src" / "playlist", ROOT / "data_prep", ROOT / "evaluation", ROOT / "src" / "encore"]
MAX_LINES = 400


def lint_imports(root: Path) -> subprocess.CompletedProcess[str]:
    """`lint-imports` on the tree at `root`, with its packages importable from there."""
    exe = Path(sys.executable).parent / "lint-imports"
    env = {"PYTHONPATH": f"{root / 'src'}:{root}", "PATH": str(exe.parent)}
    return subprocess.run([str(exe)], cwd=root, env=env, capture_output=True, text=True, check=False)


def test_the_layers_and_no_circles_hold() -> None:
    done = lint_imports(ROOT)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "3 kept, 0 broken" in done.stdout


@pytest.mark.parametrize(
    ("module", "line", "contract"),
    [
        ("data_prep/render.py", "import encore.config", "encore over data_prep and evaluation"),
        ("evaluation/score.py", "import data_prep.settings", "encore over data_prep and evaluation"),
        ("src/playlist/keys.py", "import evaluation.direction", "encore over data_prep and evaluation"),
        ("src/encore/launch.py", "from encore.cli import app", "no import circles"),
        ("src/encore/train/lora.py", "from encore.config import Recipe", "takes flat arguments"),
    ],
)
def test_a_forbidden_import_breaks_the_contract(
    tmp_path: Path, module: str, line: str, contract: str
) -> None:
    tree = tmp_path / "tree"
    for package in PACKAGES:
        shutil.copytree(
            package, tree / package.relative_to(ROOT), ignore=shutil.ignore_patterns("__pycache__")
        )
    shutil.copy(ROOT / "pyproject.toml", tree / "pyproject.toml")
    with (tree / module).open("a") as f:
        f.write(f"\n\ndef _added() -> None:\n    {line}  # noqa\n")
    done = lint_imports(tree)
    assert done.returncode != 0
    assert f"{contract}" in done.stdout and "BROKEN" in done.stdout


def test_no_module_exceeds_400_lines() -> None:
    long = {
        str(path.relative_to(ROOT)): n
        for package in PACKAGES
        for path in package.rglob("*.py")
        if (n := len(path.read_text().splitlines())) > MAX_LINES
    }
    assert not long, long

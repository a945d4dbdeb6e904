"""The notebooks in notebooks/ run top to bottom against the shared smoke run and draw their figures.

Each plotting cell carries a tag ``figure-<name>``; a figure counts as drawn when that cell put a PNG in
its outputs. The executed copies are saved under the test artifacts directory.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = ROOT / "notebooks"
FIGURES = {
    "01_feedback_to_pairs.ipynb": {
        "event-mix",
        "quarantine",
        "propensity",
        "reward-distribution",
        "strategies",
        "margins",
    },
    "02_compare_runs.ipynb": {"eval-metrics", "pipelines", "training-curves", "reward-margins"},
}
PNG = b"\x89PNG\r\n\x1a\n"


def drawn_figures(notebook: dict) -> set[str]:
    """Names of the ``figure-<name>`` cells that output a PNG."""
    names = set()
    for cell in notebook["cells"]:
        tags = [t for t in cell.get("metadata", {}).get("tags", []) if t.startswith("figure-")]
        pngs = [o["data"]["image/png"] for o in cell.get("outputs", []) if "image/png" in o.get("data", {})]
        if tags and any(base64.b64decode(p).startswith(PNG) for p in pngs):
            names.update(t.removeprefix("figure-") for t in tags)
    return names


@pytest.mark.parametrize("name", sorted(FIGURES))
def test_notebooks_are_stored_without_outputs(name: str) -> None:
    notebook = json.loads((NOTEBOOKS / name).read_text())
    code = [c for c in notebook["cells"] if c["cell_type"] == "code"]
    assert code and all(not c["outputs"] and c["execution_count"] is None for c in code)
    tagged = {t.removeprefix("figure-") for c in code for t in c["metadata"].get("tags", [])}
    assert tagged == FIGURES[name]


@pytest.mark.integration
@pytest.mark.parametrize("name", sorted(FIGURES))
def test_notebook_runs_against_the_smoke_run(
    name: str, smoke: dict, test_artifacts: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import nbformat
    from nbclient import NotebookClient

    if name.startswith("01"):
        # Parameters from the environment, from a directory that holds no outputs.
        monkeypatch.setenv("ENCORE_SMOKE_DIR", str(smoke["workdir"] / "outputs" / "smoke"))
        cwd = tmp_path
    else:
        # The defaults: the working directory of `make demo` (outputs/, mlruns/mlflow.db).
        monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
        monkeypatch.delenv("ENCORE_EXPERIMENT", raising=False)
        cwd = smoke["workdir"]
    notebook = nbformat.read(NOTEBOOKS / name, as_version=4)
    client = NotebookClient(
        notebook, kernel_name="python3", timeout=600, resources={"metadata": {"path": str(cwd)}}
    )
    try:
        client.execute()  # raises CellExecutionError, with the cell and its traceback, on any error
    finally:
        nbformat.write(notebook, test_artifacts / name)
        print(f"executed notebook: {test_artifacts / name}")
    errors = [o for c in notebook.cells for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert not errors
    assert drawn_figures(notebook) == FIGURES[name]

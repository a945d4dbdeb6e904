"""A pyfunc registered before the ground package existed still loads in a process that imported encore.

Such a version's `load_context` imports `encore.inference` and `encore.prompts`; with `encore` already
imported (`encore promote` against an older champion, `encore generate`) those imports resolve in the
installed package, not in the code the model carries.
"""

from __future__ import annotations

from pathlib import Path

import mlflow
import pandas as pd
import pytest

import encore.cli  # noqa: F401  (the process state of `encore promote` and `encore generate`)
import playlist.inference

OLD_PYFUNC = """
from mlflow.models import set_model
from mlflow.pyfunc import PythonModel


class Registered(PythonModel):
    def load_context(self, context):
        from encore.inference import PlaylistGenerator
        from encore.prompts import check_prompt_format

        check_prompt_format("2", "a version registered before the move")
        self.generator = PlaylistGenerator.__qualname__

    def predict(self, context, model_input, params=None):
        return [self.generator] * len(model_input)


set_model(Registered())
"""


def test_a_version_with_the_old_imports_loads_and_answers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from encore.inference import PlaylistGenerator

    assert PlaylistGenerator is playlist.inference.PlaylistGenerator
    model_file = tmp_path / "pyfunc_model.py"
    model_file.write_text(OLD_PYFUNC)
    monkeypatch.delenv("MLFLOW_EXPERIMENT_ID", raising=False)  # another test's experiment, in another store
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'mlflow.db'}")
    mlflow.set_experiment("registered-before-the-move")
    with mlflow.start_run():
        info = mlflow.pyfunc.log_model(name="model", python_model=str(model_file), pip_requirements=[])
    loaded = mlflow.pyfunc.load_model(info.model_uri)
    assert list(loaded.predict(pd.DataFrame({"request": ["mellow folk"]}))) == ["PlaylistGenerator"]

"""The registered MLflow pyfunc, logged as code (models-from-code): nothing pickled is ever loaded.

Input: a DataFrame with `request` and optional `history` (earlier requests) and `candidates`
(catalog track ids; retrieved from the bundled catalog when absent). Output: one row per request
with `track_ids`, `artists`, `titles`, `grounded` (lists, in playlist order) and the raw `completion`.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
from mlflow.models import set_model
from mlflow.pyfunc import PythonModel, PythonModelContext


class PlaylistModel(PythonModel):
    def load_context(self, context: PythonModelContext) -> None:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        from playlist.inference import PlaylistGenerator
        from playlist.prompts import check_prompt_format

        config = context.model_config or {}
        path = context.artifacts["model"]
        check_prompt_format(config.get("prompt_format"), f"the registered model at {path}")
        model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32, use_safetensors=True)
        tokenizer = AutoTokenizer.from_pretrained(path)
        self.generator = PlaylistGenerator(
            model,
            tokenizer,
            pd.read_parquet(context.artifacts["catalog"]),
            retrieval_k=int(config.get("retrieval_k", 20)),
            max_new_tokens=int(config.get("max_new_tokens", 256)),
        )

    def predict(
        self, context: PythonModelContext, model_input: pd.DataFrame, params: Any = None
    ) -> pd.DataFrame:
        requests = []
        for row in model_input.to_dict("records"):
            requests.append(
                {
                    "request": row["request"],
                    "history": _as_list(row.get("history")),
                    "candidates": _as_list(row.get("candidates")) or None,
                }
            )
        return pd.DataFrame(self.generator.generate(requests))


def _as_list(value: Any) -> list[str]:
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return []
    return [str(v) for v in value]


set_model(PlaylistModel())

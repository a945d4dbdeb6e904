"""Reading data_prep's Parquet outputs as TRL datasets: SFT, preference pairs, unpaired rows, prompts."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
from datasets import Dataset, load_dataset

from playlist.prompts import check_prompt_format


def check_prepared_format(prepared: Path) -> None:
    """Refuse prepared data rendered in another prompt format than this code's (its `manifest.json` says)."""
    manifest = Path(prepared) / "manifest.json"
    if manifest.exists():
        check_prompt_format(json.loads(manifest.read_text()).get("prompt_format"), str(manifest))


def read_split(path: Path, split: str = "train", limit: int | None = None) -> Dataset:
    """Rows of a prepared Parquet directory whose `split` column equals `split`.

    Raises:
        PromptFormatError: the prepared data (`path`'s parent) was rendered in another prompt format.
    """
    files = sorted(str(p) for p in Path(path).glob("*.parquet"))
    if not files:
        raise FileNotFoundError(f"{path}: no Parquet files (did the prep stage run?)")
    check_prepared_format(Path(path).parent)
    data = load_dataset("parquet", data_files=files, split="train")
    data = data.filter(lambda row: row["split"] == split)
    if limit is not None:
        data = data.select(range(min(limit, len(data))))
    return data


def sft_as_prompt_completion(data: Dataset) -> Dataset:
    """`messages` → conversational `prompt` / `completion`, so TRL computes the loss on the answer only."""

    def split_last(row: dict) -> dict:
        return {"prompt": row["messages"][:-1], "completion": row["messages"][-1:]}

    return data.map(split_last, remove_columns=data.column_names)


def preference_pairs(data: Dataset) -> Dataset:
    """Keep only TRL's conversational preference columns (`prompt`, `chosen`, `rejected`).

    The same rows feed DPO, ORPO, SimPO (CPO) and the reward model. data_prep stores
    `chosen`/`rejected` as one assistant message each; TRL expects a list of messages.
    """

    def as_lists(row: dict) -> dict:
        return {
            "prompt": row["prompt"],
            "chosen": _as_messages(row["chosen"]),
            "rejected": _as_messages(row["rejected"]),
        }

    return data.map(as_lists, remove_columns=data.column_names)


def unpaired_for_kto(data: Dataset) -> Dataset:
    """TRL's conversational unpaired preference columns (`prompt`, `completion`, `label`) for KTO."""

    def as_lists(row: dict) -> dict:
        return {
            "prompt": row["prompt"],
            "completion": _as_messages(row["completion"]),
            "label": bool(row["label"]),
        }

    return data.map(as_lists, remove_columns=data.column_names)


def unique_prompts(data: Dataset) -> Dataset:
    """One `prompt` per `prompt_id` (first seen), for online RL: GRPO samples its own completions."""
    seen: set[str] = set()
    keep = []
    for i, prompt_id in enumerate(data["prompt_id"]):
        if prompt_id not in seen:
            seen.add(prompt_id)
            keep.append(i)
    return data.select(keep).select_columns(["prompt"])


def _as_messages(value: dict | list) -> list:
    return value if isinstance(value, list) else [value]


def eval_pairs(prepared: Path, max_pairs: int | None) -> list[dict]:
    """Held-out preference pairs (`split == "eval"`) in a stable order (by pair id), at most `max_pairs`."""
    path = prepared / "pairs"
    if not path.exists():
        return []
    frame = pd.read_parquet(path)
    frame = frame[frame["split"] == "eval"].sort_values("pair_id", kind="stable")
    return (frame if max_pairs is None else frame.head(max_pairs)).to_dict("records")

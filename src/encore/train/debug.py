"""What each rank of a training run saw and held, written to files for the distributed tests to check.

Off unless `ENCORE_TRAIN_DEBUG_DIR` names a directory. Then every rank hashes each training row
its model is given (a forward pre-hook on the model: the row's `input_ids` without padding, in
training forwards only, so a reference pass with the adapter disabled is not counted) and, after
training, writes `rank<R>.json` with those hashes and a digest of the adapter weights it holds.
Rank 0 also lists the hashes of every row of the training set.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, cast

import torch
from peft import get_peft_model_state_dict
from transformers import Trainer

ENV = "ENCORE_TRAIN_DEBUG_DIR"


def row_hash(tokens: list[int]) -> str:
    """A short, stable name for one tokenised example."""
    return hashlib.sha256(",".join(map(str, tokens)).encode()).hexdigest()[:20]


def tensor_digest(tensors: Mapping[str, torch.Tensor]) -> str:
    """SHA-256 over names, dtypes, shapes and raw bytes, in name order: equal iff the tensors are equal."""
    digest = hashlib.sha256()
    for name in sorted(tensors):
        t = tensors[name].detach().cpu().contiguous()
        digest.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        digest.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return digest.hexdigest()


class ShardRecorder:
    """Hashes the rows each training forward of `trainer.model` receives; `write` dumps them."""

    def __init__(self, trainer: Trainer, out_dir: Path) -> None:
        self.out_dir = out_dir
        self.seen: list[str] = []
        model = cast(torch.nn.Module, trainer.model)
        self._handle = model.register_forward_pre_hook(self._record, with_kwargs=True)

    def _record(self, module: torch.nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        if not (module.training and torch.is_grad_enabled()):
            return
        ids = kwargs.get("input_ids", args[0] if args else None)
        if ids is None:
            return
        mask = kwargs.get("attention_mask")
        for i, row in enumerate(ids):
            tokens = row[mask[i].bool()] if mask is not None else row
            self.seen.append(row_hash(tokens.tolist()))

    def write(self, trainer: Trainer) -> Path:
        """Stop recording and write `rank<R>.json`; returns its path."""
        self._handle.remove()
        rank = trainer.args.process_index
        data: dict[str, Any] = {
            "rank": rank,
            "world_size": trainer.args.world_size,
            "seen": self.seen,
            "adapter_sha256": tensor_digest(get_peft_model_state_dict(trainer.model)),
        }
        if rank == 0 and trainer.train_dataset is not None:
            data["dataset"] = [row_hash(list(r)) for r in trainer.train_dataset["input_ids"]]
        self.out_dir.mkdir(parents=True, exist_ok=True)
        path = self.out_dir / f"rank{rank}.json"
        path.write_text(json.dumps(data))
        return path


def start(trainer: Trainer) -> ShardRecorder | None:
    """A recorder when `ENCORE_TRAIN_DEBUG_DIR` is set, else None (and nothing is hooked)."""
    out = os.environ.get(ENV)
    return ShardRecorder(trainer, Path(out)) if out else None

"""Request → grounded playlist with a trained model: retrieval, prompt, greedy generation, parsing, grounding.

The registered pyfunc and the in-process checks both use `PlaylistGenerator`, so the model a
reviewer loads from the registry answers exactly as the one the pipeline evaluated.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd
from peft import PeftModel
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from playlist.generate import generate_playlists
from playlist.grounding import catalog_tracks
from playlist.prompts import Track, catalog_key_index, parse_playlist, render_prompt, resolve
from playlist.retrieval import Retriever


@dataclass
class PlaylistGenerator:
    """A model, its tokenizer and the catalog it grounds in."""

    model: PreTrainedModel | PeftModel
    tokenizer: PreTrainedTokenizerBase
    catalog: pd.DataFrame
    retrieval_k: int = 20
    max_new_tokens: int = 256
    batch_size: int = 16

    def __post_init__(self) -> None:
        self.tracks = catalog_tracks(self.catalog)
        self.index = catalog_key_index(list(self.tracks.values()))
        self.retriever = Retriever(self.catalog)

    def candidates_for(self, request: str, candidates: Sequence[str] | None) -> list[Track]:
        """The given candidate ids that are in the catalog, or retrieved ones when none are given."""
        ids = _strings(candidates) or None
        if ids is None:
            ids = self.retriever.retrieve(request, k=self.retrieval_k)
        return [self.tracks[i] for i in ids if i in self.tracks]

    def generate(self, requests: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
        """One playlist per request dict (`request`, optional `history`, optional `candidates`)."""
        cands = [self.candidates_for(r["request"], r.get("candidates")) for r in requests]
        prompts = [
            render_prompt(r["request"], _strings(r.get("history")), c)
            for r, c in zip(requests, cands, strict=True)
        ]
        completions = generate_playlists(
            self.model,
            self.tokenizer,
            prompts,
            max_new_tokens=self.max_new_tokens,
            batch_size=self.batch_size,
        )
        return [
            self._answer(r["request"], text, c)
            for r, text, c in zip(requests, completions, cands, strict=True)
        ]

    def _answer(self, request: str, completion: str, candidates: list[Track]) -> dict[str, Any]:
        ids, artists, titles, grounded = [], [], [], []
        for line in parse_playlist(completion).tracks:
            track_id = resolve(line, candidates, self.index)
            ids.append(track_id or "")
            artists.append(line.artist)
            titles.append(line.title)
            grounded.append(track_id is not None)
        return {
            "request": request,
            "track_ids": ids,
            "artists": artists,
            "titles": titles,
            "grounded": grounded,
            "completion": completion,
        }


def _strings(value: Any) -> list[str]:
    """A list, numpy array (as Parquet gives) or None as a list of strings."""
    return [] if value is None else [str(v) for v in value]

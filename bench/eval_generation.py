"""Batched vs one-request-at-a-time greedy generation on the same held-out-style requests.

Both runs use the same model, prompts and settings in this one process, so the printed ratio is
meaningful on a noisy machine where absolute seconds are not. Last line: `batched_vs_sequential=<x>`.

    .venv/bin/python bench/eval_generation.py [--model builtin:tiny] [--requests 32] [--batch-size 16]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch

from encore.models import load_model
from playlist.generate import generate_playlists
from playlist.grounding import catalog_tracks
from playlist.prompts import render_prompt
from playlist.retrieval import Retriever, load_catalog
from playlist.simulator import simulate


def prompts_from_simulator(n: int, k: int) -> list[list[dict[str, str]]]:
    with tempfile.TemporaryDirectory() as tmp:
        paths = simulate(Path(tmp), seed=1, n_users=max(8, n // 4), n_tracks=800, n_artists=120)
        catalog = load_catalog(paths["catalog"])
        import pandas as pd

        requests = pd.read_json(paths["responses"], lines=True)["request"].drop_duplicates().head(n).tolist()
    tracks, retriever = catalog_tracks(catalog), Retriever(catalog)
    return [render_prompt(r, [], [tracks[i] for i in retriever.retrieve(r, k=k)]) for r in requests]


def timed(fn) -> tuple[float, list[str]]:  # type: ignore[no-untyped-def]
    start = time.perf_counter()
    out = fn()
    return time.perf_counter() - start, out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="builtin:tiny")
    parser.add_argument("--requests", type=int, default=32)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--max-new-tokens", type=int, default=48)
    parser.add_argument("--candidates", type=int, default=12)
    args = parser.parse_args()

    torch.manual_seed(0)
    model, tokenizer = load_model(args.model)
    prompts = prompts_from_simulator(args.requests, args.candidates)
    kwargs = {"max_new_tokens": args.max_new_tokens}
    generate_playlists(model, tokenizer, prompts[:2], batch_size=2, **kwargs)  # warm-up
    t_seq, seq = timed(lambda: generate_playlists(model, tokenizer, prompts, batch_size=1, **kwargs))
    t_bat, bat = timed(
        lambda: generate_playlists(model, tokenizer, prompts, batch_size=args.batch_size, **kwargs)
    )
    same = sum(a == b for a, b in zip(seq, bat, strict=True))
    print(
        f"model={args.model} requests={len(prompts)} batch_size={args.batch_size} torch_threads={torch.get_num_threads()}"
    )
    print(f"sequential_s={t_seq:.2f} batched_s={t_bat:.2f} identical_outputs={same}/{len(prompts)}")
    print(f"batched_vs_sequential={t_seq / t_bat:.2f}")


if __name__ == "__main__":
    main()

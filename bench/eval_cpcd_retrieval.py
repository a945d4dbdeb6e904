"""BM25 retrieval baseline on held-out CPCD conversations, scored as the CPCD paper scores retrieval.

Held-out conversations are chosen by :func:`evaluation.cpcd.is_heldout` (a hash of the conversation id,
20%). At every turn BM25 ranks tracks for the user's words so far, in two setups:

- ``catalog``: the whole CPCD catalog available here (every track with metadata in the file), as the
  paper ranks a whole track corpus;
- ``shown``: only the tracks shown at that turn that have metadata (what encore's CPCD prompts offer as
  candidates; in this file those are mostly the turn's liked and disliked tracks, so the setup leaks the labels);

plus a seeded random ranking of the whole catalog for the chance level. Metrics are Hit@k, MRR@k and
recall@k for k = 1, 5, 10, 20, macro over conversations (:mod:`evaluation.tasks.retrieval`).
Last line: ``bm25_hit_at_10=<value>`` (the ``catalog`` setup).

    .venv/bin/python bench/eval_cpcd_retrieval.py [--data ../shared/data/cpcd/cpcd_v1.dialogs.dev.train.jsonl]
"""

from __future__ import annotations

import argparse
import random
import sys
from pathlib import Path

from evaluation.cpcd import (
    HELDOUT_FRACTION,
    BM25Ranker,
    is_heldout,
    liked_per_turn,
    load_conversations,
    shown_per_turn,
    track_catalog,
    turn_query,
)
from evaluation.tasks.retrieval import KS, conversation_scores, macro_average

DEFAULT_DATA = (
    Path(__file__).resolve().parents[1]
    / ".."
    / "shared"
    / "data"
    / "cpcd"
    / "cpcd_v1.dialogs.dev.train.jsonl"
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--fraction", type=float, default=HELDOUT_FRACTION)
    args = parser.parse_args()
    if not args.data.exists():
        sys.exit(f"CPCD data not found at {args.data} (see ../shared/data/README.md)")

    conversations = load_conversations(args.data)
    held = [c for c in conversations if is_heldout(c["id"], args.fraction)]
    catalog = track_catalog(conversations)
    ranker = BM25Ranker(catalog)
    depth = max(KS)
    ids = [t.track_id for t in catalog]

    rankings: dict[str, list[list[list[str]]]] = {"catalog": [], "shown": [], "random": []}
    for conv in held:
        n_turns = len(conv["turns"])
        queries = [turn_query(conv, t) for t in range(n_turns)]
        shown = shown_per_turn(conv)
        rng = random.Random(f"cpcd-random:{conv['id']}")
        rankings["catalog"].append([ranker.rank(q, depth) for q in queries])
        rankings["shown"].append(
            [ranker.rank(q, depth, among=s) for q, s in zip(queries, shown, strict=True)]
        )
        rankings["random"].append([rng.sample(ids, depth) for _ in queries])

    n_turns = sum(len(c["turns"]) for c in held)
    print(
        f"data: {args.data.name}: {len(conversations)} conversations, catalog {len(catalog)} tracks with metadata"
    )
    print(f"held out: {len(held)} conversations ({args.fraction:.0%} by id hash), {n_turns} turns")
    results = {}
    for setup, per_conv in rankings.items():
        scores = [
            conversation_scores(r, c["goal_playlist"], liked_per_turn(c))
            for r, c in zip(per_conv, held, strict=True)
        ]
        results[setup] = macro_average(scores)
    names = [f"{m}@{k}" for m in ("hit", "mrr", "recall") for k in KS]
    print("| setup | conversations | " + " | ".join(names) + " |")
    print("|---|---|" + "---|" * len(names))
    for setup, metrics in results.items():
        cells = " | ".join(f"{metrics[n]:.4f}" for n in names)
        print(
            f"| bm25-{setup} | {metrics['n_conversations']:.0f} | {cells} |".replace("bm25-random", "random")
        )
    print(f"bm25_hit_at_10={results['catalog']['hit@10']:.4f}")


if __name__ == "__main__":
    main()

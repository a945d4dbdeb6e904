"""Retrieval on held-out CPCD conversations, scored as the CPCD paper scores it: BM25, and encore's models.

Held-out conversations are chosen by :func:`evaluation.cpcd.is_heldout` (a hash of the conversation id,
20%). At each scored turn BM25 ranks tracks for the user's words so far, in two setups:

- ``catalog``: the whole CPCD catalog available here (every track with metadata in the file), as the
  paper ranks a whole track corpus;
- ``shown``: only the tracks shown at that turn that have metadata (what encore's CPCD prompts offer as
  candidates; in this file those are mostly the turn's liked and disliked tracks, so the setup leaks the labels);

plus a seeded random ranking of the whole catalog for the chance level.

With ``--recipe``, each of ``--models`` (``base`` and the recipe's trained stages, from its output
directory) reranks a shortlist: BM25's best ``--shortlist`` tracks of the whole catalog become the
candidates of encore's prompt (the turn's words as the request, earlier turns' words as the history),
the model answers greedily, and the candidates its answer names, in its order, are its ranking
(:func:`evaluation.cpcd.answer_ranking`). Beside them: BM25's own order of the same shortlist (the
``catalog`` setup cut at the shortlist) and a seeded random order of it (the chance level of
reranking). Generation costs seconds per turn on a CPU, hence ``--turns last`` (each conversation's
last turn that still has gold tracks) and ``--max-conversations``; every setup is then scored on the
same turns.

Metrics are Hit@k, MRR@k and recall@k for k = 1, 5, 10, 20, macro over conversations
(:mod:`evaluation.tasks.goal_ranking`). Last line: ``bm25_hit_at_10=<value>`` (the ``catalog`` setup).

    .venv/bin/python bench/eval_cpcd_retrieval.py [--data ../shared/data/cpcd/cpcd_v1.dialogs.dev.train.jsonl]
    .venv/bin/python bench/eval_cpcd_retrieval.py --recipe recipes/smollm2-135m/cpu/pipeline.yaml \\
        --models base,sft,dpo --turns last --out .cache/bench/cpcd-llm.json
"""

from __future__ import annotations

import argparse
import gc
import json
import random
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from evaluation.cpcd import (
    HELDOUT_FRACTION,
    BM25Ranker,
    CatalogTrack,
    answer_ranking,
    is_heldout,
    liked_per_turn,
    load_conversations,
    shown_per_turn,
    track_catalog,
    turn_prompt,
    turn_query,
)
from evaluation.tasks.goal_ranking import KS, conversation_scores, last_scorable_turn, macro_average

DEFAULT_DATA = (
    Path(__file__).resolve().parents[1]
    / ".."
    / "shared"
    / "data"
    / "cpcd"
    / "cpcd_v1.dialogs.dev.train.jsonl"
)
if TYPE_CHECKING:
    from encore.config import Recipe

NAMES = [f"{m}@{k}" for m in ("hit", "mrr", "recall") for k in KS]


def model_rankings(
    recipe: Recipe,
    model: str,
    prompts: list[list[dict[str, str]]],
    shortlists: list[list[CatalogTrack]],
    *,
    max_new_tokens: int | None,
    batch_size: int,
) -> tuple[list[list[str]], list[str]]:
    """One model's rankings (and raw answers) for ``prompts``: ``base`` or a stage of the recipe's output."""
    from transformers import set_seed

    from encore.stages.evaluate import adapters_for
    from encore.train.lora import load_policy
    from playlist.generate import generate_playlists

    set_seed(recipe.seed)
    adapters = adapters_for(recipe, model)
    policy, tokenizer = load_policy(recipe.base_model, adapters, trust_remote_code=recipe.trust_remote_code)
    budget = max_new_tokens or recipe.eval.max_new_tokens
    answers = generate_playlists(policy, tokenizer, prompts, max_new_tokens=budget, batch_size=batch_size)
    del policy
    gc.collect()
    return [answer_ranking(a, s) for a, s in zip(answers, shortlists, strict=True)], answers


def score(
    held: list[dict[str, Any]], rankings: list[list[list[str]]], turns: list[set[int] | None]
) -> dict[str, float]:
    """Macro scores of one setup's per-conversation, per-turn rankings over the scored turns."""
    per_conversation = [
        conversation_scores(r, c["goal_playlist"], liked_per_turn(c), turns=t)
        for r, c, t in zip(rankings, held, turns, strict=True)
    ]
    return macro_average(per_conversation)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--fraction", type=float, default=HELDOUT_FRACTION)
    parser.add_argument(
        "--turns", choices=["all", "last"], default="all", help="turns scored per conversation"
    )
    parser.add_argument(
        "--max-conversations", type=int, default=None, help="the first N held-out conversations"
    )
    parser.add_argument(
        "--recipe", type=Path, default=None, help="rank with this recipe's trained models too"
    )
    parser.add_argument(
        "--set", dest="overrides", action="append", default=[], help="recipe override, key=value"
    )
    parser.add_argument("--models", default="base,sft,dpo", help="with --recipe: base and/or trained stages")
    parser.add_argument("--shortlist", type=int, default=20, help="with --recipe: BM25 candidates per prompt")
    parser.add_argument("--max-new-tokens", type=int, default=None, help="default: the recipe's eval budget")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--out", type=Path, default=None, help="write the scores and sample answers as JSON")
    args = parser.parse_args()
    if not args.data.exists():
        sys.exit(f"CPCD data not found at {args.data} (see ../shared/data/README.md)")

    conversations = load_conversations(args.data)
    held = [c for c in conversations if is_heldout(c["id"], args.fraction)][: args.max_conversations]
    catalog = track_catalog(conversations)
    by_id = {t.track_id: t for t in catalog}
    ranker = BM25Ranker(catalog)
    depth = max(KS)
    ids = [t.track_id for t in catalog]

    turns: list[set[int] | None] = []
    for conv in held:
        last = last_scorable_turn(conv["goal_playlist"], liked_per_turn(conv))
        turns.append(None if args.turns == "all" else ({last} if last is not None else set()))

    rankings: dict[str, list[list[list[str]]]] = {"bm25-catalog": [], "bm25-shown": [], "random": []}
    shortlisted: list[tuple[int, int, list[CatalogTrack]]] = []  # (conversation, turn, shortlist)
    for c, conv in enumerate(held):
        n_turns = len(conv["turns"])
        queries = [turn_query(conv, t) for t in range(n_turns)]
        shown = shown_per_turn(conv)
        rng = random.Random(f"cpcd-random:{conv['id']}")
        catalog_ranked = [ranker.rank(q, max(depth, args.shortlist)) for q in queries]
        rankings["bm25-catalog"].append([r[:depth] for r in catalog_ranked])
        rankings["bm25-shown"].append(
            [ranker.rank(q, depth, among=s) for q, s in zip(queries, shown, strict=True)]
        )
        rankings["random"].append([rng.sample(ids, depth) for _ in queries])
        scored = turns[c]
        for t in range(n_turns):
            if scored is None or t in scored:
                shortlisted.append((c, t, [by_id[i] for i in catalog_ranked[t][: args.shortlist]]))

    answers: dict[str, list[str]] = {}
    if args.recipe is not None:
        per_turn: dict[str, list[list[str]]] = {
            f"bm25-shortlist{args.shortlist}": [],
            f"random-shortlist{args.shortlist}": [],
        }
        from encore.config import load_recipe
        from encore.stages.evaluate import adapters_for

        recipe = load_recipe(args.recipe, args.overrides)
        models = [m for m in args.models.split(",") if m]
        missing = [str(a) for m in models for a in adapters_for(recipe, m) if not a.exists()]
        if missing:  # before any model generates
            sys.exit(f"no trained adapter at {', '.join(missing)} (run the recipe first)")
        prompts = [turn_prompt(held[c], t, s) for c, t, s in shortlisted]
        lists = [s for _, _, s in shortlisted]
        for name in models:
            per_turn[name], answers[name] = model_rankings(
                recipe,
                name,
                prompts,
                lists,
                max_new_tokens=args.max_new_tokens,
                batch_size=args.batch_size,
            )
        for c, t, s in shortlisted:
            order = [x.track_id for x in s]
            per_turn[f"bm25-shortlist{args.shortlist}"].append(order)
            rng = random.Random(f"cpcd-shortlist:{held[c]['id']}:{t}")
            per_turn[f"random-shortlist{args.shortlist}"].append(rng.sample(order, len(order)))
        for setup, ranked in per_turn.items():
            grid: list[list[list[str]]] = [[[] for _ in conv["turns"]] for conv in held]
            for (c, t, _), r in zip(shortlisted, ranked, strict=True):
                grid[c][t] = r
            rankings[setup] = grid

    n_turns = sum(len(c["turns"]) if t is None else len(t) for c, t in zip(held, turns, strict=True))
    print(
        f"data: {args.data.name}: {len(conversations)} conversations, catalog {len(catalog)} tracks with metadata"
    )
    print(
        f"held out: {len(held)} conversations ({args.fraction:.0%} by id hash), {n_turns} turns scored ({args.turns})"
    )
    results = {setup: score(held, per_conv, turns) for setup, per_conv in rankings.items()}
    print("| setup | conversations | " + " | ".join(NAMES) + " |")
    print("|---|---|" + "---|" * len(NAMES))
    for setup, metrics in results.items():
        cells = " | ".join(f"{metrics[n]:.4f}" for n in NAMES)
        print(f"| {setup} | {metrics['n_conversations']:.0f} | {cells} |")
    if args.out is not None:
        samples = [
            {"conversation": held[c]["id"], "turn": t, "query": turn_query(held[c], t),
             **{name: answers[name][i] for name in answers}}
            for i, (c, t, _) in enumerate(shortlisted[:10])
        ]  # fmt: skip
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps({"args": {k: str(v) for k, v in vars(args).items()},
                                        "results": results, "samples": samples}, indent=2))  # fmt: skip
    for name in answers:
        print(f"hit_at_10_{name}={results[name]['hit@10']:.4f}")
    print(f"bm25_hit_at_10={results['bm25-catalog']['hit@10']:.4f}")


if __name__ == "__main__":
    main()

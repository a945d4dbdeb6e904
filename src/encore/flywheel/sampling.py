"""The flywheel's requests and samples: the training users' logged requests, n playlists each from the policy.

The requests are those `encore collect` answers (the first logged response of every (session, turn) of
a training user; eval users are never sampled, so the held-out set does not change), with the prompt,
`prompt_id` and `user_key` prep gives them. Samples are seeded temperature sampling, batched.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from encore.config import Recipe
from encore.stages.collect import train_prompts
from encore.stages.evaluate import greedy_playlists, policy_on_device
from evaluation.score import score_row
from playlist.generate import generate_playlists
from playlist.grounding import ground_completion
from playlist.keys import prompt_id_of, user_key_of
from playlist.prompts import Track, render_prompt


def training_requests(
    recipe: Recipe, responses: Sequence[Mapping[str, Any]], tracks: Mapping[str, Track], limit: int | None
) -> list[dict[str, Any]]:
    """The training users' requests (module docstring), at most `limit`, each with its rendered `prompt`."""
    key = recipe.hash_key
    requests = []
    for r in train_prompts(recipe, responses)[:limit]:
        candidates = [str(c) for c in r["candidates"]]
        history = [str(h) for h in r.get("history") or []]
        requests.append(
            {
                **r,
                "candidates": candidates,
                "history": history,
                "prompt": render_prompt(str(r["request"]), history, [tracks[c] for c in candidates]),
                "prompt_id": prompt_id_of(str(r["session_id"]), int(r["turn"]), str(r["request"]), key),
                "user_key": user_key_of(str(r["user_id"]), key),
            }
        )
    return requests


def sample_playlists(
    recipe: Recipe,
    adapters: list[Path],
    prompts: Sequence[list[dict[str, str]]],
    *,
    samples: int,
    temperature: float,
    seed: int,
    greedy_first: bool = False,
) -> list[list[str]]:
    """`samples` answers per prompt from the policy `adapters` make: sample j is seeded `seed + j`. With
    `greedy_first`, answer 0 is the greedy one (the playlist production shows) and the others are sampled."""
    model, tokenizer = policy_on_device(recipe, adapters)
    greedy = (
        [greedy_playlists(recipe, model, tokenizer, [{"prompt": p} for p in prompts])] if greedy_first else []
    )
    sampled = [
        generate_playlists(
            model,
            tokenizer,
            list(prompts),
            max_new_tokens=recipe.eval.max_new_tokens,
            batch_size=recipe.eval.batch_size,
            do_sample=True,
            temperature=temperature,
            seed=seed + j,
        )
        for j in range(len(greedy), samples)
    ]
    return [list(texts) for texts in zip(*greedy, *sampled, strict=True)]


def shown_tracks(
    completion: str, candidates: Sequence[str], tracks: dict[str, Track], index: dict[tuple[str, str], str]
) -> list[str]:
    """The tracks a listener gets for an answer: its grounded lines' tracks, each once, in order."""
    playlist = ground_completion(completion, candidates, tracks, index)
    return list(dict.fromkeys(t for t in playlist.track_ids if t is not None))


def intent_fulfillment(
    completion: str,
    request: Mapping[str, Any],
    intent: str | None,
    tracks: dict[str, Track],
    records: Mapping[str, Mapping[str, Any]],
    index: dict[tuple[str, str], str],
) -> float | None:
    """The eval's fulfilment of an answer against the request's hidden intent (simulated logs only)."""
    if intent is None:
        return None
    row = {"prompt_id": request["prompt_id"], "candidates": request["candidates"], "intent": intent}
    value = score_row(completion, row, tracks, records, index)["fulfillment"]
    return None if value is None else float(value)

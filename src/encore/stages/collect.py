"""Collect stage: a feedback round on a trained policy, for on-policy preference pairs (simulated data only).

The policy (`sft`, or any trained stage) answers every logged request of the training users
(turns of the simulator's sessions; eval users are left alone, so the held-out set does not change)
with the prompt prep renders; each answer's grounded tracks are shown to the request's simulated
user, whose reactions are logged (`playlist.simulator.rounds`). The stage writes a whole set of logs,
the originals plus the round, to `<out>/raw/round-<model>/`, for a prep run with `data.source: logs`
(docs/recipes.md, "On-policy rounds"). MLflow: a `collect` run with the round's size and its
playlists' length and grounding.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import mlflow
import numpy as np

from encore.config import Recipe
from encore.errors import UserFacingError
from encore.stages.evaluate import adapters_for, policy_on_device
from encore.tracking import stage_run
from playlist.generate import generate_playlists
from playlist.grounding import ground_completion
from playlist.keys import split_of, user_key_of
from playlist.prompts import catalog_key_index, render_prompt
from playlist.simulator.catalog import as_prompt_track, make_catalog
from playlist.simulator.rounds import add_round, prompts_of
from playlist.simulator.users import make_users
from playlist.simulator.writer import write_jsonl

LOGS = ("responses", "interactions", "intents", "catalog")


def read_logs(raw: Path) -> dict[str, list[dict[str, Any]]]:
    """The simulator's four JSON Lines logs under `raw`."""
    missing = [name for name in LOGS if not (raw / f"{name}.jsonl").exists()]
    if missing:
        raise UserFacingError(
            f"{raw}: no {', '.join(missing)} log; `encore prep` writes the simulated logs first"
        )
    logs = {}
    for name in LOGS:
        with (raw / f"{name}.jsonl").open(encoding="utf-8") as f:
            logs[name] = [json.loads(line) for line in f if line.strip()]
    return logs


def train_prompts(recipe: Recipe, responses: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """:func:`prompts_of` the training users, split as prep splits them (same key, same fraction)."""
    key = recipe.hash_key
    return [
        dict(r)
        for r in prompts_of(responses)
        if split_of(user_key_of(str(r["user_id"]), key), recipe.prep.eval_fraction) == "train"
    ]


def listeners(recipe: Recipe, logs: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    """The recipe's simulated users by id, checked against the logs' catalog (the one they were made with)."""
    sim = recipe.data.simulator
    catalog = make_catalog(recipe.seed, n_artists=sim.n_artists, n_tracks=sim.n_tracks)
    if sorted(catalog["track_id"]) != sorted(str(t["track_id"]) for t in logs["catalog"]):
        raise UserFacingError(
            f"{recipe.out / 'raw'}: the catalog is not the recipe's simulated one; run `encore prep`"
        )
    return {u.user_id: u for u in make_users(catalog, sim.n_users, np.random.default_rng([recipe.seed, 1]))}


def main(
    recipe: Recipe,
    model: str = "sft",
    samples: int = 1,
    temperature: float = 0.0,
    max_prompts: int | None = None,
) -> Path:
    """Answer the training users' requests with `model`, simulate their feedback, write the logs; returns their directory.

    Args:
        recipe: a recipe whose data is the simulator's (the listeners need the hidden intents).
        model: the stage whose policy answers (`sft`, `dpo`, …), or `base`.
        samples: answers per request; more than one needs sampling (`temperature` > 0).
        temperature: 0 for greedy decoding, else the sampling temperature (seeded by the recipe's seed).
        max_prompts: answer only the first this many requests (in log order); None for all.
    """
    if recipe.data.source != "simulator":
        raise UserFacingError(
            "collect replays the simulator's users and needs `data.source: simulator`; feedback on a "
            "new model from real users comes from deploying it"
        )
    if samples < 1 or (samples > 1 and temperature <= 0):
        raise UserFacingError(
            f"--samples {samples} with --temperature {temperature}: greedy decoding gives one answer"
        )
    adapters = adapters_for(recipe, model)
    missing = [str(a) for a in adapters if not a.exists()]
    if missing:
        raise UserFacingError(f"no trained adapter for {model!r}: {', '.join(missing)}")
    logs = read_logs(recipe.out / "raw")
    users = listeners(recipe, logs)
    tracks = {str(t["track_id"]): as_prompt_track(t) for t in logs["catalog"]}
    index = catalog_key_index(list(tracks.values()))
    prompts = train_prompts(recipe, logs["responses"])[:max_prompts]
    strangers = sorted({str(p["user_id"]) for p in prompts} - set(users))
    if strangers:
        raise UserFacingError(
            f"users {strangers[:3]} of the logs are not the recipe's simulated ones; run `encore prep`"
        )
    policy = f"encore-{model}"
    out = recipe.out / "raw" / f"round-{model}"  # raw logs: user ids, like the simulated ones
    with stage_run(recipe, "collect"):
        mlflow.log_params(
            {
                "collect.model": model,
                "collect.samples": samples,
                "collect.temperature": temperature,
                "collect.max_prompts": "all" if max_prompts is None else max_prompts,
            }
        )
        policy_model, tokenizer = policy_on_device(recipe, adapters)
        messages = [
            render_prompt(p["request"], p["history"], [tracks[str(c)] for c in p["candidates"]])
            for p in prompts
        ]
        answers: dict[str, list[list[str]]] = {str(p["response_id"]): [] for p in prompts}
        lines = grounded = 0
        for k in range(samples):
            texts = generate_playlists(
                policy_model,
                tokenizer,
                messages,
                max_new_tokens=recipe.eval.max_new_tokens,
                batch_size=recipe.eval.batch_size,
                do_sample=temperature > 0,
                temperature=temperature if temperature > 0 else 1.0,
                seed=recipe.seed + k,
            )
            for p, text in zip(prompts, texts, strict=True):
                playlist = ground_completion(text, [str(c) for c in p["candidates"]], tracks, index)
                ids = [t for t in playlist.track_ids if t is not None]
                lines += playlist.n_answer_lines
                grounded += len(ids)
                answers[str(p["response_id"])].append(list(dict.fromkeys(ids)))  # a track is shown once
        rounds = add_round(logs, answers, users, policy=policy, seed=recipe.seed)
        out.mkdir(parents=True, exist_ok=True)
        for name in LOGS:
            write_jsonl(out / f"{name}.jsonl", rounds[name])
        shown = [a for per_prompt in answers.values() for a in per_prompt if a]
        mlflow.log_metrics(
            {
                "collect/prompts": len(prompts),
                "collect/responses": len(shown),
                "collect/empty_answers": len(prompts) * samples - len(shown),
                "collect/mean_length": float(np.mean([len(a) for a in shown])) if shown else 0.0,
                "collect/grounded": grounded / lines if lines else 0.0,
                "collect/interactions": len(rounds["interactions"]) - len(logs["interactions"]),
            }
        )
    return out

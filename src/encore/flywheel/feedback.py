"""The flywheel's logs and its reward model: the prepared logs plus every round's, and the model fit on them.

The prepared logs are the prep job's validated responses and interactions. A round's own logs come from
the simulator in this process (`playlist.simulator.rounds.add_round`), so they are appended as the job
would have validated them: the user id replaced by its keyed `user_key`, the rest as logged. Real
feedback on a deployed round goes through `encore prep` instead.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from encore.config import Recipe
from encore.flywheel.reward import PlaylistReward
from encore.stages.evaluate import prep_rewards
from encore.train.data import eval_pairs
from evaluation.pair_labels import logged_intents, pair_signs
from evaluation.reranker import reranker_from_logs
from evaluation.tasks.reward_model import reward_quality
from playlist.grounding import catalog_records, catalog_tracks
from playlist.keys import split_of, user_key_of
from playlist.prompts import catalog_key_index

MAX_HELDOUT_PAIRS = 2000  # the reward model's pair accuracy is measured on at most this many


@dataclass
class RoundLogs:
    """Validated responses and interactions, the prepared ones first, then each round's."""

    responses: pd.DataFrame
    interactions: pd.DataFrame
    eval_fraction: float
    prepared: Path

    @classmethod
    def from_prepared(cls, prepared: Path) -> RoundLogs:
        config = json.loads((prepared / "manifest.json").read_text())["config"]
        return cls(
            pd.read_parquet(prepared / "validated" / "responses"),
            pd.read_parquet(prepared / "validated" / "interactions"),
            float(config["eval_fraction"]),
            prepared,
        )

    def copy(self) -> RoundLogs:
        return RoundLogs(self.responses.copy(), self.interactions.copy(), self.eval_fraction, self.prepared)

    def add_raw(self, raw: Path, key: str, *, first_new: int) -> None:
        """Append the responses of `raw/responses.jsonl` from line `first_new` on, and their interactions."""
        responses = pd.read_json(
            raw / "responses.jsonl", lines=True, dtype={"session_id": str, "request": str}
        )
        new = responses.iloc[first_new:].copy()
        new["user_key"] = [user_key_of(str(u), key) for u in new.pop("user_id")]
        interactions = pd.read_json(raw / "interactions.jsonl", lines=True, dtype={"track_id": str})
        ids = set(new["response_id"])
        self.responses = pd.concat([self.responses, new[self.responses.columns]], ignore_index=True)
        self.interactions = pd.concat(
            [
                self.interactions,
                interactions[interactions["response_id"].isin(ids)][self.interactions.columns],
            ],
            ignore_index=True,
        )

    def train_users(self) -> set[str]:
        return {
            str(u)
            for u in self.responses["user_key"].unique()
            if split_of(str(u), self.eval_fraction) == "train"
        }


def fit_reward(
    logs: RoundLogs, catalog: pd.DataFrame, recipe: Recipe
) -> tuple[PlaylistReward, dict[str, float]]:
    """The reward model fit on `logs` (training users), with the reranker's figures (held-out NDCG@10)."""
    rewards = prep_rewards(logs.prepared)
    reranker, figures = reranker_from_logs(
        logs.responses,
        logs.interactions,
        catalog,
        logs.train_users(),
        recipe.seed,
        weights=rewards.resolved_weights(),
        early_skip=rewards.early_skip,
        track_clip=rewards.track_clip,
    )
    if reranker is None:
        raise ValueError("the logs hold no examined track of a training user: nothing to learn a reward from")
    tracks = catalog_tracks(catalog)
    return PlaylistReward(
        reranker,
        tracks,
        catalog_records(catalog),
        catalog_key_index(list(tracks.values())),
        repeat_artist_worth=recipe.flywheel.repeat_artist_worth,
    ), figures


def reward_figures(reward: PlaylistReward, catalog: pd.DataFrame, recipe: Recipe) -> dict[str, float]:
    """The reward model as a model on the held-out users' logged pairs (`evaluation.tasks.reward_model`)."""
    prepared = recipe.out / "prepared"
    pairs = eval_pairs(prepared, MAX_HELDOUT_PAIRS)
    if not pairs:
        return {}
    histories: dict[str, Any] = dict(
        pd.read_parquet(prepared / "eval", columns=["prompt_id", "history"]).itertuples(index=False)
    )
    chosen, rejected = [], []
    for pair in pairs:
        logged = histories.get(pair["prompt_id"])
        history = [] if logged is None else [str(h) for h in logged]
        chosen.append(reward.score_pair_side(pair["prompt"], pair["chosen"][-1]["content"], history))
        rejected.append(reward.score_pair_side(pair["prompt"], pair["rejected"][-1]["content"], history))
    prompts = logged_intents(recipe.out / "raw", recipe.hash_key)
    signs = pair_signs(pd.DataFrame(pairs), prompts, catalog) if prompts is not None else None
    return reward_quality(chosen, rejected, signs)

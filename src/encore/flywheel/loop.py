"""`encore flywheel RECIPE`: on-policy rounds, ranked by a reward model learnt from the grown logs, against SFT.

Each round, starting from the SFT policy (docs/flywheel.md):

1. sample `flywheel.samples` playlists for every training request from the current policy;
2. show the first sample of each request to its simulated user (one playlist per request, as in
   production) and add the reactions to the logs;
3. fit the reward model (`encore.flywheel.reward`) on all logs so far, training users only, and score it
   on the held-out users' logged pairs; score every sample with it (the users never rank the n samples);
4. pair each request's best sample with its worst under the margin rules (`encore.flywheel.pairs`) and
   train the recipe's preference method on them, from the current policy, as a new adapter on top;
5. evaluate the new policy on the held-out requests.

Then the matched-compute control: SFT continued from the SFT model on the `sft` rows for as many steps,
at the same batch size and learning rate, as all rounds' preference training together. Paired
differences, final policy minus control and minus SFT, close the run.

MLflow: a `flywheel` run, one nested `round-<k>` run per round (its samples and pairs as `mlflow.data`
inputs, the reward model's figures `reward/…`, the policy's `eval/…`), the preference training nested in it,
and a `control` run; the final policy is registered (`register.name`, alias `register.alias`) when
`register.enabled`. `<out>/flywheel/round-<k>/round.json` records each round: a finished round is not
redone, and a crashed one starts again in its own MLflow run.
"""

from __future__ import annotations

import gc
import json
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd
from mlflow.data.pandas_dataset import from_pandas

from encore.config import Recipe
from encore.errors import UserFacingError
from encore.flywheel.feedback import RoundLogs, fit_reward, reward_figures
from encore.flywheel.pairs import round_pairs
from encore.flywheel.sampling import intent_fulfillment, sample_playlists, shown_tracks, training_requests
from encore.flywheel.scoring import evaluate_policy, paired_report
from encore.stages import preference, register, sft
from encore.stages.collect import listeners, read_logs
from encore.stages.evaluate import eval_rows
from encore.tracking import stage_run, write_json
from evaluation.score import EvalResult
from playlist.grounding import catalog_records, catalog_tracks
from playlist.prompts import catalog_key_index
from playlist.simulator.rounds import add_round
from playlist.simulator.writer import write_jsonl


def _preference_stage(recipe: Recipe) -> preference.PreferenceStage:
    import importlib

    name = recipe.preference_stage
    stage = getattr(importlib.import_module(f"encore.stages.{name}"), "STAGE", None)
    if not isinstance(stage, preference.PreferenceStage) or stage.data != "pairs":
        raise UserFacingError(
            f"the flywheel trains on pairs: preference {name!r} does not (use dpo, orpo or simpo)"
        )
    return stage


def run(recipe: Recipe) -> dict[str, EvalResult]:
    """Run the rounds and the control (module docstring); returns every policy's held-out scores by name."""
    if recipe.data.source != "simulator":
        raise UserFacingError(
            "the flywheel shows each round's playlists to the simulator's users and needs "
            "`data.source: simulator`; with real users a round's feedback comes from deploying it"
        )
    fw = recipe.flywheel
    stage = _preference_stage(recipe)
    prepared = recipe.out / "prepared"
    home = recipe.out / "flywheel"
    start = [recipe.out / "sft" / "adapter"]
    if not start[0].exists():
        raise UserFacingError(
            f"no SFT adapter at {start[0]}: run `encore pipeline` (or `encore train sft`) first"
        )
    logs = read_logs(recipe.out / "raw")
    users = listeners(recipe, logs)
    catalog = pd.read_parquet(prepared / "validated" / "catalog")
    requests = training_requests(recipe, logs["responses"], catalog_tracks(catalog), fw.max_prompts)
    rows = eval_rows(prepared, fw.max_requests)
    history = RoundLogs.from_prepared(prepared)
    results: dict[str, EvalResult] = {}
    with stage_run(recipe, "flywheel"):
        mlflow.log_params({f"flywheel.{k}": v for k, v in fw.model_dump().items()})
        mlflow.log_metrics({"flywheel/train_requests": len(requests), "flywheel/heldout_requests": len(rows)})
        results["sft"] = evaluate_policy(recipe, start, rows, catalog, home / "sft")
        policy, steps, examples = list(start), 0, 0
        for k in range(1, fw.rounds + 1):
            round_dir = home / f"round-{k}"
            record = _read_record(round_dir)
            if record.get("status") != "FINISHED":
                record = _round(
                    recipe, stage, k, policy, requests, logs, users, history, catalog, round_dir, record
                )
            logs = read_logs(round_dir / "raw")
            history.add_raw(round_dir / "raw", recipe.hash_key, first_new=record["first_new"])
            policy.append(round_dir / stage.name / "adapter")
            steps, examples = steps + int(record["steps"]), examples + int(record["pairs"])
            results[f"round-{k}"] = evaluate_policy(recipe, policy, rows, catalog, round_dir)
        final = f"round-{fw.rounds}"
        mlflow.log_metrics({"flywheel/preference_steps": steps, "flywheel/preference_examples": examples})
        if fw.control:
            control_dir = home / "control"
            adapter = control_dir / "sft" / "adapter"
            if not (control_dir / "done.json").exists():
                with mlflow.start_run(run_name="control", nested=True):
                    mlflow.set_tag("encore.stage", "flywheel-control")
                    sft.train_on(
                        recipe, prepared / "sft", start, control_dir / "sft", _control_args(recipe, steps)
                    )
                write_json(control_dir / "done.json", {"steps": steps})
            results["control"] = evaluate_policy(recipe, [*start, adapter], rows, catalog, control_dir)
        names = [n for n in ("control", "sft") if n in results]
        report = paired_report(results, final, names)
        for base, deltas in report.items():
            mlflow.log_metrics(
                {f"flywheel/{final}-{base}/{d.metric}": d.mean for d in deltas if d.mean is not None}
            )
            mlflow.log_metrics(
                {f"flywheel/{final}-{base}/{d.metric}_se": d.stderr for d in deltas if d.stderr}
            )
        write_json(home / "metrics.json", {name: r.metrics for name, r in results.items()})
        mlflow.log_artifact(str(home / "metrics.json"), "flywheel")
        if recipe.registry.enabled:
            lineage = "+".join(["sft", *(f"{stage.name}-round-{k}" for k in range(1, fw.rounds + 1))])
            register.register_policy(recipe, policy, lineage, results[final].metrics, home / "register")
    return results


def _control_args(recipe: Recipe, steps: int) -> dict[str, Any]:
    """SFT args for the control: the rounds' optimiser settings and their total step count."""
    pref = recipe.section(recipe.preference_stage).args
    base = dict(recipe.section("sft").args)
    shared: tuple[str, ...] = ("learning_rate", "per_device_train_batch_size", "lr_scheduler_type")
    same: dict[str, Any] = {k: pref[k] for k in shared if k in pref}
    return {**base, **same, "max_steps": max(steps, 1), "warmup_steps": 0, "save_strategy": "no"}


def _read_record(round_dir: Path) -> dict[str, Any]:
    path = round_dir / "round.json"
    return json.loads(path.read_text()) if path.exists() else {}


def _round(
    recipe: Recipe,
    stage: preference.PreferenceStage,
    k: int,
    policy: list[Path],
    requests: list[dict[str, Any]],
    logs: dict[str, list[dict[str, Any]]],
    users: dict[str, Any],
    history: RoundLogs,
    catalog: pd.DataFrame,
    round_dir: Path,
    previous: dict[str, Any],
) -> dict[str, Any]:
    """Round `k` (module docstring, steps 1–4); returns its record (`round.json`). `previous`: the record
    of an unfinished try, whose MLflow run the round continues."""
    fw = recipe.flywheel
    tracks, records = catalog_tracks(catalog), catalog_records(catalog)
    index = catalog_key_index(list(tracks.values()))
    with mlflow.start_run(
        run_id=previous.get("run_id"), run_name=None if previous else f"round-{k}", nested=True
    ) as run:
        mlflow.set_tag("encore.stage", f"flywheel-round-{k}")
        write_json(round_dir / "round.json", {"run_id": run.info.run_id, "status": "RUNNING"})
        samples = sample_playlists(
            recipe,
            policy,
            [r["prompt"] for r in requests],
            samples=fw.samples,
            temperature=fw.temperature,
            seed=recipe.seed + 1000 * k,
            greedy_first=fw.greedy_first,
        )
        gc.collect()
        shown = {
            str(r["response_id"]): [shown_tracks(s[0], r["candidates"], tracks, index)]
            for r, s in zip(requests, samples, strict=True)
        }
        first_new = len(logs["responses"])
        grown = add_round(logs, shown, users, policy=f"encore-flywheel-{k - 1}", seed=recipe.seed + k)
        (round_dir / "raw").mkdir(parents=True, exist_ok=True)
        for name, log in grown.items():
            write_jsonl(round_dir / "raw" / f"{name}.jsonl", log)
        with_round = history.copy()
        with_round.add_raw(round_dir / "raw", recipe.hash_key, first_new=first_new)
        reward, figures = fit_reward(with_round, catalog, recipe)
        rewards = [[reward.score_row(r, text) for text in s] for r, s in zip(requests, samples, strict=True)]
        intents = {str(i["response_id"]): i["intent"] for i in logs["intents"]}
        figures |= _best_of_n(requests, samples, rewards, intents, tracks, records, index)
        figures |= reward_figures(reward, catalog, recipe)
        mlflow.log_metrics({f"reward/{k_}": v for k_, v in figures.items()})
        frame = pd.DataFrame(
            {"prompt_id": [r["prompt_id"] for r in requests for _ in range(fw.samples)],
             "sample": [t for s in samples for t in s],
             "reward": [x for rw in rewards for x in rw]}
        )  # fmt: skip
        frame.to_parquet(round_dir / "samples.parquet", index=False)
        mlflow.log_input(
            from_pandas(frame, source=str(round_dir / "samples.parquet"), name=f"samples-{k}"),
            context="sampling",
        )
        pairs = round_pairs(
            requests, samples, rewards, margin=fw.margin, length_tolerance=fw.length_tolerance, round_no=k
        )
        if not pairs:
            raise UserFacingError(
                f"round {k}: no request gave a pair past the margin {fw.margin}; lower it or sample more"
            )
        (round_dir / "pairs").mkdir(parents=True, exist_ok=True)
        pd.DataFrame(pairs).to_parquet(round_dir / "pairs" / "part-00000.parquet", index=False)
        mlflow.log_metrics({"round/pairs": len(pairs), "round/requests": len(requests),
                            "round/mean_margin": float(np.mean([p["margin"] for p in pairs]))})  # fmt: skip
        preference.train_on(recipe, stage, round_dir / "pairs", policy, round_dir / stage.name)
        steps = _trained_steps(round_dir / stage.name)
        record = {
            "run_id": run.info.run_id,
            "status": "FINISHED",
            "first_new": first_new,
            "steps": steps,
            "pairs": len(pairs),
        }
        write_json(round_dir / "round.json", record)
    return record


def _trained_steps(stage_dir: Path) -> int:
    """The optimiser steps the round's preference training took (its trainer state beside the adapter)."""
    record = json.loads((stage_dir / "run.json").read_text())
    run = mlflow.get_run(record["run_id"])
    return int(run.data.metrics["train/steps"])


def _best_of_n(
    requests: list[dict[str, Any]],
    samples: list[list[str]],
    rewards: list[list[float]],
    intents: dict[str, str],
    tracks: Any,
    records: Any,
    index: Any,
) -> dict[str, float]:
    """On the training requests, by the hidden intent: a sample's mean fulfilment, the reward model's pick
    of the n, and the best of the n (the ceiling a perfect reward model would reach)."""
    mean, picked, ceiling = [], [], []
    for r, texts, scores in zip(requests, samples, rewards, strict=True):
        scored = [
            intent_fulfillment(t, r, intents.get(str(r["response_id"])), tracks, records, index)
            for t in texts
        ]
        values = [v for v in scored if v is not None]
        if len(values) < len(scored):
            continue
        mean.append(float(np.mean(values)))
        picked.append(values[int(np.argmax(scores))])
        ceiling.append(max(values))
    if not mean:
        return {}
    return {"sample_fulfillment": float(np.mean(mean)), "picked_fulfillment": float(np.mean(picked)),
            "best_of_n_fulfillment": float(np.mean(ceiling))}  # fmt: skip

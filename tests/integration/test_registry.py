"""The registry end to end through the real CLI: `encore promote` refuses a worse candidate and accepts a
better one, computing both sides' metrics by evaluating the registered pyfuncs; `encore generate` answers
from `@champion`.

Cheap and honest: no pipeline run. A small eval set is built from the simulator's own pieces (catalog,
intent, phrasing): four phrasings of one hidden intent (a genre, 4 tracks), each offering the same 8
candidates, 4 of that genre and 4 of other genres, all by different artists. `builtin:tiny` is fine-tuned
(full weights, a few dozen steps) to answer the 4 in-genre candidates, and registered through
`encore.stages.register` twice: as is ("good"), and deliberately degraded with a generation budget that
stops after two tracks ("short": valid, grounded and diverse, but half the asked-for length). The
untrained random-weight model ("random") answers nothing that parses. The eval tasks then give good a
fulfilment of 1.0, short 0.75 (genre 1, length 0.5) and random 0.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import mlflow
import pandas as pd
import pytest
import torch
from mlflow import MlflowClient
from typer.testing import CliRunner

from encore.cli import app
from encore.models import load_model, resolve_model
from encore.registry.promote import FLOORS
from encore.stages.register import SIGNATURE, log_playlist_model, register_version
from playlist.grounding import catalog_tracks
from playlist.prompts import render_playlist, render_prompt
from playlist.simulator.catalog import make_catalog
from playlist.simulator.intents import empty_intent
from playlist.simulator.phrasing import phrase_request

pytestmark = pytest.mark.integration
NAME = "registry-test"
MAX_STEPS = 80  # the loss falls under 0.05 in about 70 steps (lr 3e-3)


def eval_set(catalog: pd.DataFrame) -> tuple[list[dict], list[str], list[str]]:
    """Eval rows (the prepared `eval` columns), and the in-genre and off-genre candidate track ids."""
    tracks = catalog_tracks(catalog)
    genre = catalog["genre"].value_counts().index[0]

    def four_artists(frame: pd.DataFrame) -> list[str]:
        return list(frame.sort_values("track_id").drop_duplicates("artist")["track_id"][:4])

    good = four_artists(catalog[catalog["genre"] == genre])
    poor = four_artists(catalog[(catalog["genre"] != genre) & ~catalog["artist"].isin(catalog.loc[
        catalog["track_id"].isin(good), "artist"])])  # fmt: skip
    candidates = good + poor
    intent = empty_intent("genre") | {"genre": genre, "length": 4}
    rng = random.Random(0)
    rows = []
    for i in range(4):
        request = phrase_request(intent, rng)
        rows.append(
            {"prompt_id": f"p{i}", "user_key": f"u{i}", "request": request, "history": [],
             "candidates": candidates, "prompt": render_prompt(request, [], [tracks[c] for c in candidates]),
             "intent": json.dumps(intent), "reference": good}
        )  # fmt: skip
    return rows, good, poor


def fine_tune(rows: list[dict], answer: str, out: Path) -> int:
    """Full-weight fine-tuning of builtin:tiny to give `answer` to every eval prompt; saves it to `out`.

    Returns:
        How many tokens of the answer hold its first two lines and nothing of the third.
    """
    model, tokenizer = load_model("builtin:tiny")
    ids, labels = [], []
    for row in rows:
        text = tokenizer.apply_chat_template(row["prompt"], add_generation_prompt=True, tokenize=False)
        prompt = tokenizer(text, add_special_tokens=False)["input_ids"]
        target = tokenizer(answer + "<|im_end|>", add_special_tokens=False)["input_ids"]
        ids.append(prompt + target)
        labels.append([-100] * len(prompt) + target)
    width = max(map(len, ids))
    x = torch.tensor([a + [tokenizer.pad_token_id] * (width - len(a)) for a in ids])
    y = torch.tensor([b + [-100] * (width - len(b)) for b in labels])
    mask = (x != tokenizer.pad_token_id).long()
    torch.manual_seed(0)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    model.train()
    for _ in range(MAX_STEPS):
        loss = model(input_ids=x, attention_mask=mask, labels=y).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        if loss.item() < 0.05:  # greedy decoding gives the answer back well before 0
            break
    model.save_pretrained(out, safe_serialization=True)
    tokenizer.save_pretrained(out)
    two_lines = "\n".join(answer.splitlines()[:2])
    return max(k for k in range(len(target)) if two_lines.startswith(tokenizer.decode(target[:k])))


def register(
    model_dir: Path, catalog_path: Path, rows: list[dict], tags: dict[str, str], max_new_tokens: int = 64
) -> str:
    """Log and register `model_dir` as the playlist pyfunc with alias `candidate`, as the register stage does."""
    example = pd.DataFrame([{k: rows[0][k] for k in ("request", "history", "candidates")}])
    with mlflow.start_run(run_name="register"):
        uri = log_playlist_model(
            model_dir, catalog_path, example, retrieval_k=8, max_new_tokens=max_new_tokens
        )
        return register_version(uri, NAME, "candidate", tags)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """The eval set on disk, the three models registered, and every promotion of the story, in order."""
    tmp = tmp_path_factory.mktemp("registry")
    uri = f"sqlite:///{tmp / 'mlflow.db'}"
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    mlflow.set_experiment("registry-test")
    catalog = make_catalog(3, n_artists=40, n_tracks=300)
    catalog.to_parquet(tmp / "catalog.parquet", index=False)
    rows, good, poor = eval_set(catalog)
    eval_path = tmp / "eval.parquet"
    pd.DataFrame(rows).to_parquet(eval_path, index=False)
    tracks = catalog_tracks(catalog)
    answer = render_playlist([tracks[t] for t in good], [tracks[c] for c in good + poor])
    two_lines = fine_tune(rows, answer, tmp / "good")
    w: dict = {
        "request": rows[0]["request"],
        "tmp": tmp,
        "uri": uri,
        "client": MlflowClient(uri, uri),
        "good": good,
        "poor": poor,
        "steps": {},
    }
    tags = {"eval_set": str(eval_path), "primary_metric": "fulfillment"}

    def step(label: str, *args: str) -> None:
        w["steps"][label] = (*promote(w, *args), aliases(w))

    # 1. No champion yet: the untrained model fails the floors.
    w["random"] = register(Path(resolve_model("builtin:tiny")), tmp / "catalog.parquet", rows, tags)
    step("random_first")
    # 2. The short model passes the floors and becomes the first champion (eval set given explicitly).
    w["short"] = register(tmp / "good", tmp / "catalog.parquet", rows, {}, max_new_tokens=two_lines)
    step("short_first", "--eval-set", str(eval_path))
    # 3. A worse challenger (the untrained model again, under another alias) is refused.
    w["client"].set_registered_model_alias(NAME, "challenger", w["random"])
    step("random_vs_short", "--from", "challenger")
    # 4. The good model beats the champion by more than the margin: it is promoted.
    # Registered with a floor of its own (a recipe's `register.floors`), which the gate holds it to.
    w["good_v"] = register(
        tmp / "good", tmp / "catalog.parquet", rows, tags | {"floor.distinct_artist_ratio": "0.3"}
    )
    step("good_vs_short", "--margin", "0.2")
    return w


def promote(w: dict, *args: str) -> tuple[int, str, dict]:
    """`encore promote` through the CLI: (exit code, output, its JSON report)."""
    report = w["tmp"] / "promote.json"
    report.unlink(missing_ok=True)
    result = CliRunner().invoke(
        app, ["promote", NAME, "--tracking-uri", w["uri"], "--report", str(report), *args], terminal_width=200
    )
    assert result.exit_code in (0, 1), result.output + repr(result.exception)
    return result.exit_code, result.output, json.loads(report.read_text())


def aliases(w: dict) -> dict[str, str]:
    return {alias: str(v) for alias, v in w["client"].get_registered_model(NAME).aliases.items()}


def test_every_version_carries_a_signature_and_an_input_example(world: dict):
    for version in (world["random"], world["short"], world["good_v"]):
        info = mlflow.models.get_model_info(f"models:/{NAME}/{version}")
        assert info.signature == SIGNATURE
        assert info.saved_input_example_info is not None


def test_with_no_champion_a_model_below_the_floors_is_refused(world: dict):
    code, out, report = world["steps"]["random_first"][:3]
    assert code == 1 and "not promoted" in out
    assert report["champion"] is None and report["candidate_metrics"]["format_valid"] == 0.0
    assert "champion" not in world["steps"]["random_first"][3]


def test_with_no_champion_a_model_above_the_floors_becomes_champion(world: dict):
    code, out, report, after = world["steps"]["short_first"]
    assert code == 0 and "promoted" in out and "first champion" in out
    assert report["candidate_metrics"]["grounded"] >= 0.95
    assert after["champion"] == world["short"] and "previous-champion" not in after


def test_a_worse_candidate_is_refused_and_no_alias_moves(world: dict):
    code, out, report, after = world["steps"]["random_vs_short"]
    assert code == 1 and "not promoted" in out
    assert report["candidate"] == world["random"] and report["champion"] == world["short"]
    # Both sides were evaluated here, on the same requests.
    assert report["champion_metrics"]["n_requests"] == report["candidate_metrics"]["n_requests"] == 4
    assert report["candidate_metrics"]["fulfillment"] < report["champion_metrics"]["fulfillment"]
    assert after["champion"] == world["short"] and "previous-champion" not in after


def test_a_better_candidate_is_promoted_and_the_old_champion_kept_as_previous(world: dict):
    code, out, report, after = world["steps"]["good_vs_short"]
    assert code == 0, out
    cand, champ = report["candidate_metrics"], report["champion_metrics"]
    assert cand["fulfillment"] - champ["fulfillment"] >= 0.2
    for guardrail in ("format_valid", "grounded", "distinct_artist_ratio"):
        assert cand[guardrail] >= champ[guardrail]
    assert after["champion"] == world["good_v"] and after["previous-champion"] == world["short"]
    assert "fulfillment" in out and "guardrail" in out  # the table says why
    # The gain weighed request by request: the same requests, so the paired mean is the gap of the means.
    assert report["paired"]["n"] == champ["n_fulfillment"]
    assert report["paired"]["mean"] == pytest.approx(cand["fulfillment"] - champ["fulfillment"])
    assert "paired fulfillment" in out
    assert report["floors"] == FLOORS | {"distinct_artist_ratio": 0.3}
    assert world["steps"]["random_first"][2]["floors"] == FLOORS


def test_a_floor_that_is_not_metric_equals_number_is_a_usage_error(world: dict):
    for bad in ("grounded=high", "n_requests=3", "grounded"):
        result = CliRunner().invoke(
            app, ["promote", NAME, "--tracking-uri", world["uri"], "--floor", bad], terminal_width=200
        )
        assert result.exit_code == 2 and f"--floor {bad}" in result.output, result.output


def test_generate_prints_the_champions_playlist(world: dict):
    result = CliRunner().invoke(
        app,
        ["generate", world["request"],
         "--model", f"models:/{NAME}@champion", "--tracking-uri", world["uri"],
         *[arg for c in world["good"] + world["poor"] for arg in ("--candidate", c)]],
        terminal_width=200,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert all(track_id in result.output for track_id in world["good"])
    assert not any(track_id in result.output for track_id in world["poor"])

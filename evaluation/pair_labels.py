"""Label quality of preference pairs on simulated data: does the chosen side fit the hidden intent better?

A pair's chosen and rejected sides come from what listeners did (plays, skips, saves, edits,
refinements), not from the request's hidden intent, so a pair can teach the opposite of what the eval's
fulfillment rewards. On simulator data the intent is logged (``intents``), and each side can be scored
against it with the eval's own scorer (:func:`evaluation.score.score_row`). Per strategy: the share of
pairs whose chosen side fits better, equally (the pair says nothing about fulfillment) or worse.

    python -m encore.pair_labels recipes/smollm2-135m/gpu/400-users.yaml      # <out>/raw, train pairs
    python -m encore.pair_labels RECIPE --set name=… --raw <out>/raw/round-sft  # an on-policy round
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from evaluation.score import score_row
from playlist.grounding import catalog_records, catalog_tracks
from playlist.keys import prompt_id_of
from playlist.prompts import catalog_key_index

SIDES = ("better", "equal", "worse")  # how the chosen side fits the intent against the rejected side


def prompt_intents(
    responses: pd.DataFrame, intents: Mapping[str, str], key: str
) -> dict[str, tuple[list[str], str]]:
    """``prompt_id`` → (candidates, intent JSON) of the first logged response to each prompt with an intent."""
    out: dict[str, tuple[list[str], str]] = {}
    for r in responses.itertuples():
        pid = prompt_id_of(str(r.session_id), int(r.turn), str(r.request), key)
        if r.response_id in intents and pid not in out:
            out[pid] = ([str(c) for c in r.candidates], intents[r.response_id])
    return out


def logged_intents(raw: Path, key: str) -> dict[str, tuple[list[str], str]] | None:
    """:func:`prompt_intents` of simulator logs in ``raw`` (``responses.jsonl``, ``intents.jsonl``), hashed
    with the prep's ``key``; None when ``raw`` holds no intents (real logs)."""
    if not (raw / "intents.jsonl").exists():
        return None
    intents = dict(
        (str(rec["response_id"]), str(rec["intent"]))
        for rec in map(json.loads, (raw / "intents.jsonl").read_text().splitlines())
    )
    responses = pd.read_json(raw / "responses.jsonl", lines=True, dtype={"session_id": str, "request": str})
    return prompt_intents(responses, intents, key)


def _answer(messages: Any) -> str:
    return str(messages[-1]["content"])


def pair_signs(
    pairs: pd.DataFrame, prompts: Mapping[str, tuple[Sequence[str], str]], catalog: pd.DataFrame
) -> list[int | None]:
    """Per pair, how its chosen side fits the hidden intent against its rejected side, by the eval's
    fulfillment: +1 better, 0 equally, -1 worse, None when its prompt has no logged intent."""
    tracks, records = catalog_tracks(catalog), catalog_records(catalog)
    index = catalog_key_index(list(tracks.values()))
    signs: list[int | None] = []
    for pair in pairs.itertuples():
        if pair.prompt_id not in prompts:
            signs.append(None)
            continue
        candidates, intent = prompts[pair.prompt_id]
        row = {"prompt_id": pair.prompt_id, "candidates": list(candidates), "intent": intent}
        chosen, rejected = (
            score_row(_answer(side), row, tracks, records, index)["fulfillment"]
            for side in (pair.chosen, pair.rejected)
        )
        signs.append((chosen > rejected) - (chosen < rejected))
    return signs


def agreement(
    pairs: pd.DataFrame, prompts: Mapping[str, tuple[Sequence[str], str]], catalog: pd.DataFrame
) -> pd.DataFrame:
    """Per strategy and ``all``: pairs, and the shares whose chosen side fits the intent better, equally, worse.

    Pairs whose prompt has no logged intent are counted in ``no_intent`` and left out of the shares.
    """
    frame = pd.DataFrame(
        {"strategy": list(pairs["strategy"]), "sign": pair_signs(pairs, prompts, catalog)},
        columns=["strategy", "sign"],
    )
    frame = pd.concat([frame, frame.assign(strategy="all")])
    verdict = frame["sign"].map({1: "better", 0: "equal", -1: "worse"}).fillna("no_intent")
    counts = pd.crosstab(frame["strategy"], verdict).reindex(columns=[*SIDES, "no_intent"], fill_value=0)
    scored = counts[list(SIDES)].sum(axis=1)
    table = counts[list(SIDES)].div(scored.where(scored > 0), axis=0)
    table.insert(0, "pairs", scored)
    table["no_intent"] = counts["no_intent"]
    table.columns.name = None
    return table

"""Label quality of pairs: the chosen side scored against the hidden intent with the eval's own scorer."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from evaluation.pair_labels import agreement, prompt_intents
from playlist.keys import prompt_id_of

CATALOG = pd.DataFrame(
    {
        "track_id": ["t1", "t2", "t3"],
        "title": ["Pink Moon", "One More Time", "River"],
        "artist": ["Nick Drake", "Daft Punk", "Joni Mitchell"],
        "genre": ["folk", "electronic", "folk"],
        "year": [1972, 2000, 1971],
        "energy": [0.2, 0.9, 0.3],
        "valence": [0.3, 0.8, 0.2],
        "duration_ms": [120_000, 320_000, 240_000],
        "popularity": [60, 80, 70],
    }
)
INTENT = json.dumps(
    {"category": "genre", "genre": "folk", "mood": None, "energy": None, "valence": None,
     "era": None, "length": None, "avoid_artists": []}
)  # fmt: skip
FOLK, ELECTRONIC, OTHER_FOLK = (
    "c1 | Nick Drake - Pink Moon",
    "c2 | Daft Punk - One More Time",
    "c3 | Joni Mitchell - River",
)


def _answer(text: str) -> list[dict[str, str]]:
    return [{"role": "assistant", "content": text}]


def test_prompts_are_found_by_the_jobs_prompt_id_and_keep_the_first_logged_intent() -> None:
    responses = pd.DataFrame(
        {
            "response_id": ["r1", "r2", "r3"],
            "session_id": ["s1", "s1", "s2"],
            "turn": [0, 0, 0],
            "request": ["folk please", "folk please", "no intent logged"],
            "candidates": [["t1", "t2", "t3"], ["t2", "t1", "t3"], ["t1"]],
        }
    )
    prompts = prompt_intents(responses, {"r1": INTENT, "r2": "{}"}, key="k")
    assert prompts == {prompt_id_of("s1", 0, "folk please", "k"): (["t1", "t2", "t3"], INTENT)}


def test_agreement_counts_better_equal_and_worse_per_strategy_and_in_all() -> None:
    prompts = {"p": (["t1", "t2", "t3"], INTENT)}
    pairs = pd.DataFrame(
        {
            "prompt_id": ["p", "p", "p", "unknown"],
            "strategy": ["response", "response", "edit", "edit"],
            "chosen": [_answer(FOLK), _answer(ELECTRONIC), _answer(FOLK), _answer(FOLK)],
            "rejected": [_answer(ELECTRONIC), _answer(FOLK), _answer(OTHER_FOLK), _answer(ELECTRONIC)],
        }
    )
    table = agreement(pairs, prompts, CATALOG)
    assert table.loc["response", ["pairs", "better", "equal", "worse", "no_intent"]].tolist() == [
        2,
        0.5,
        0.0,
        0.5,
        0,
    ]
    assert table.loc["edit", ["pairs", "equal", "no_intent"]].tolist() == [1, 1.0, 1]  # both sides folk
    assert table.loc["all", "pairs"] == 3 and table.loc["all", "better"] == pytest.approx(1 / 3)
    assert table.loc["all", "no_intent"] == 1

"""The flywheel's pairs: per request, the reward model's best sample against its worst, under margin rules.

For each request with n sampled playlists and their rewards:

- identical answers count once; a request whose samples are all the same gives no pair;
- chosen: the best-rewarded sample;
- rejected: the worst-rewarded sample whose answer has within `length_tolerance` lines of the chosen
  one's (length held about equal, so the pair does not teach "longer" or "shorter");
- the pair is kept only when the reward gap is at least `margin` (ties and near-ties are dropped:
  the reward model cannot tell those apart).

Rows follow the prepared pairs' schema (`prompt`, `chosen`, `rejected` as messages; `pair_id`,
`prompt_id`, `reward_chosen`, `reward_rejected`, `margin`, `strategy`, `split`), so the preference stages
read them as they read `prepared/pairs`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from typing import Any

from playlist.prompts import parse_playlist

STRATEGY = "flywheel_best_worst"


def answer_lines(text: str) -> int:
    """The number of non-empty answer lines (parsed or not)."""
    parsed = parse_playlist(text)
    return len(parsed.tracks) + len(parsed.bad_lines)


def best_worst(
    texts: Sequence[str], rewards: Sequence[float], *, margin: float, length_tolerance: int
) -> tuple[int, int] | None:
    """Indices of the chosen and rejected sample (module docstring), or None when no pair passes the rules."""
    first = {t: i for i, t in reversed(list(enumerate(texts)))}  # one index per distinct answer
    distinct = sorted(first.values(), key=lambda i: (-rewards[i], i))
    if len(distinct) < 2:
        return None
    best = distinct[0]
    length = answer_lines(texts[best])
    for worst in reversed(distinct[1:]):
        if rewards[best] - rewards[worst] < margin:
            return None  # the rest are closer still
        if abs(answer_lines(texts[worst]) - length) <= length_tolerance:
            return best, worst
    return None


def round_pairs(
    prompts: Sequence[Mapping[str, Any]],
    samples: Sequence[Sequence[str]],
    rewards: Sequence[Sequence[float]],
    *,
    margin: float,
    length_tolerance: int,
    round_no: int,
) -> list[dict[str, Any]]:
    """One pair per request that passes the rules; `prompts` carry `prompt` (messages), `prompt_id`, `user_key`."""
    pairs = []
    for prompt, texts, scores in zip(prompts, samples, rewards, strict=True):
        picked = best_worst(texts, scores, margin=margin, length_tolerance=length_tolerance)
        if picked is None:
            continue
        chosen, rejected = picked
        digest = hashlib.sha256(f"{round_no}\x00{prompt['prompt_id']}".encode()).hexdigest()[:16]
        pairs.append(
            {
                "prompt": list(prompt["prompt"]),
                "chosen": [{"role": "assistant", "content": texts[chosen]}],
                "rejected": [{"role": "assistant", "content": texts[rejected]}],
                "pair_id": digest,
                "prompt_id": str(prompt["prompt_id"]),
                "user_key": str(prompt["user_key"]),
                "reward_chosen": float(scores[chosen]),
                "reward_rejected": float(scores[rejected]),
                "margin": float(scores[chosen] - scores[rejected]),
                "strategy": STRATEGY,
                "split": "train",
            }
        )
    return pairs

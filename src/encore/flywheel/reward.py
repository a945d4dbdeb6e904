"""The flywheel's reward model: the learned reranker's per-track scores, aggregated over a playlist, times the checks.

A pointwise model of user satisfaction (`evaluation.reranker`: LightGBM lambdarank on every examined
track's logged reward, training users only) scores each candidate of a request; the scores are
min–max scaled over the request's candidates, so the best candidate is worth 1 and the worst 0. A
playlist's reward is the mean worth of its answer lines, where a line that does not name a candidate,
or names one an earlier line named, is worth 0, times how close its length is to the length the request
text asks for (`length_score`, the eval's rule; 10 when the request names none)::

    candidates c1..c3 worth 1.0, 0.2, 0.0; request "…, 2 songs"
    "c1 | …\\nc2 | …"            (1.0 + 0.2) / 2 × 1.0 = 0.60
    "c1 | …\\nc1 | …"            (1.0 + 0.0) / 2 × 1.0 = 0.50   a repeat is worth nothing
    "c1 | …"                    1.0 / 1 × 0.5         = 0.50   half the length asked for

With `repeat_artist_worth` below 1 (`flywheel.repeat_artist_worth`), a track whose artist an earlier line
already named is worth that much less for each such line (0.5: the second track of an artist counts half,
the third a quarter): the programmatic check beside the learned model that playlists vary their artists.

A mean over lines rather than a sum: a longer playlist is not worth more for being longer (saves per
track, not per playlist). The hidden intent is never read: the reward sees what a production system sees,
the request text, the candidates and the logs.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from encore.train.rewards import prompt_candidates, prompt_request, requested_length
from evaluation.baselines import DEFAULT_LENGTH
from evaluation.reranker import Reranker
from evaluation.tasks.fulfillment import length_score
from playlist.grounding import ground_completion
from playlist.prompts import Track, normalise


@dataclass
class PlaylistReward:
    """A playlist's reward for a request (module docstring), from a reranker trained on the logs."""

    reranker: Reranker
    tracks: dict[str, Track]
    records: Mapping[str, Mapping[str, Any]]
    index: dict[tuple[str, str], str]
    repeat_artist_worth: float = 1.0
    _worth: dict[tuple[str, tuple[str, ...]], dict[str, float]] = field(default_factory=dict, repr=False)

    def worth(self, request: str, history: Sequence[str], candidates: Sequence[str]) -> dict[str, float]:
        """Each candidate's worth in [0, 1]: its reranker score, min–max scaled over the candidates."""
        key = (request + "\x00" + "\x00".join(history), tuple(candidates))
        if key not in self._worth:
            query = self.reranker.parser.parse(request, list(history))
            scores = self.reranker.scores(query, [self.records[t] for t in candidates])
            span = float(scores.max() - scores.min()) if len(scores) else 0.0
            scaled = (scores - scores.min()) / span if span > 0 else np.full(len(scores), 0.5)
            self._worth[key] = dict(zip(candidates, scaled.tolist(), strict=True))
        return self._worth[key]

    def score(
        self, request: str, history: Sequence[str], candidates: Sequence[str], completion: str
    ) -> float:
        """The reward of `completion` as the answer to `request` over `candidates` (track ids, as shown)."""
        playlist = ground_completion(completion, candidates, self.tracks, self.index)
        lines = playlist.n_answer_lines
        if lines == 0:
            return 0.0
        worth = self.worth(request, history, candidates)
        named = [tid for tid in playlist.track_ids if tid in worth]
        total, by_artist = 0.0, Counter[str]()
        for tid in dict.fromkeys(named):  # a repeated track counts once
            artist = normalise(self.tracks[tid].artist)
            total += worth[tid] * self.repeat_artist_worth ** by_artist[artist]
            by_artist[artist] += 1
        wanted = requested_length(request) or DEFAULT_LENGTH
        return total / lines * length_score(lines, wanted)

    def score_row(self, row: Mapping[str, Any], completion: str) -> float:
        """:meth:`score` for a request row (``request, history, candidates`` as in prepared/eval)."""
        return self.score(
            str(row["request"]), _ids(row.get("history")), _ids(row.get("candidates")), completion
        )

    def score_pair_side(self, prompt: Sequence[dict[str, str]], answer: str, history: Sequence[str]) -> float:
        """:meth:`score` for a rendered prompt (a prepared pair's): its candidates read back from the text."""
        shown = [
            self.index.get((normalise(t.artist), normalise(t.title))) for t in prompt_candidates(list(prompt))
        ]
        if any(t is None for t in shown):
            raise ValueError(
                f"a candidate of the prompt is not in the catalog: {prompt_request(list(prompt))!r}"
            )
        return self.score(prompt_request(list(prompt)), history, [str(t) for t in shown], answer)


def _ids(values: Any) -> list[str]:
    return [] if values is None else [str(v) for v in values]

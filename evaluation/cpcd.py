"""CPCD retrieval evaluation data: the held-out split, per-turn queries, the track catalog and a BM25 baseline.

The split is deterministic and keyed by conversation id only: a conversation is held out when the first
8 bytes of ``sha256("encore-cpcd-heldout:" + id)``, read as a big-endian integer and divided by 2^64,
fall below ``fraction`` (20% by default). Adding or removing other conversations never moves one.

Example::

    >>> conversations = load_conversations("../shared/data/cpcd/cpcd_v1.dialogs.dev.train.jsonl")
    >>> held = [c for c in conversations if is_heldout(c["id"])]
    >>> catalog = track_catalog(conversations)           # every track with metadata, all conversations
    >>> ranker = BM25Ranker(catalog)
    >>> ranked = ranker.rank(turn_query(held[0], 1), k=20)   # 20 track ids, best first
"""

from __future__ import annotations

import gzip
import hashlib
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from playlist.prompts import Track, catalog_key_index, normalise, parse_playlist, render_prompt, resolve

SPLIT_SALT = "encore-cpcd-heldout:"
HELDOUT_FRACTION = 0.2


def load_conversations(path: str | Path) -> list[dict[str, Any]]:
    """Read CPCD conversations from a JSON Lines file (optionally gzipped), in file order."""
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def is_heldout(conversation_id: str, fraction: float = HELDOUT_FRACTION) -> bool:
    """Whether a conversation belongs to the held-out split (see the module docstring)."""
    digest = hashlib.sha256((SPLIT_SALT + conversation_id).encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < fraction


def _text(value: Any) -> str:
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    return "" if value is None else str(value)


@dataclass(frozen=True)
class CatalogTrack:
    """One CPCD track with metadata (titles and artists are what BM25 and grounding read)."""

    track_id: str
    title: str
    artist: str
    album: str


def track_catalog(conversations: Iterable[Mapping[str, Any]]) -> list[CatalogTrack]:
    """Every track with a title and an artist in the conversations' ``tracks`` maps, first entry wins, by id."""
    seen: dict[str, CatalogTrack] = {}
    for conv in conversations:
        for tid, meta in (conv.get("tracks") or {}).items():
            title, artist = _text(meta.get("track_titles")), _text(meta.get("track_artists"))
            if tid not in seen and title.strip() and artist.strip():
                seen[tid] = CatalogTrack(tid, title, artist, _text(meta.get("track_release_titles")))
    return [seen[tid] for tid in sorted(seen)]


def turn_query(conversation: Mapping[str, Any], turn: int) -> str:
    """The user's words up to and including ``turn`` (the conversation so far, system turns left out)."""
    return " ".join(str(t.get("user_query") or "") for t in conversation["turns"][: turn + 1])


def turn_prompt(
    conversation: Mapping[str, Any], turn: int, shortlist: Sequence[CatalogTrack]
) -> list[dict[str, str]]:
    """encore's chat prompt for one turn: its words as the request, earlier turns' words as the history,
    ``shortlist`` (e.g. BM25's best tracks for the conversation so far) as the candidates."""
    words = [str(t.get("user_query") or "") for t in conversation["turns"][: turn + 1]]
    candidates = [Track(t.track_id, t.artist, t.title) for t in shortlist]
    return render_prompt(words[-1], words[:-1], candidates)


def answer_ranking(text: str, shortlist: Sequence[CatalogTrack]) -> list[str]:
    """The shortlist track ids a model's answer names, in its order, each once.

    A line counts when it resolves to a candidate as grounding resolves it (its id with that
    candidate's artist and title, or an exact artist and title of another candidate); any other
    line is dropped, so an invented track is a miss at its position's expense.
    """
    candidates = [Track(t.track_id, t.artist, t.title) for t in shortlist]
    index = catalog_key_index(candidates)
    picked = (resolve(line, candidates, index) for line in parse_playlist(text).tracks)
    return list(dict.fromkeys(tid for tid in picked if tid is not None))


def liked_per_turn(conversation: Mapping[str, Any]) -> list[list[str]]:
    """The liked track ids of each turn."""
    return [list(t.get("liked_results") or []) for t in conversation["turns"]]


def shown_per_turn(conversation: Mapping[str, Any]) -> list[list[str]]:
    """The track ids shown at each turn (search results flattened in order, then any rated id not among them)."""
    shown = []
    for t in conversation["turns"]:
        ids = [tid for results in t.get("search_results") or [] for tid in results]
        ids += list(t.get("liked_results") or []) + list(t.get("disliked_results") or [])
        shown.append(list(dict.fromkeys(ids)))
    return shown


_TOKEN = re.compile(r"[a-z0-9]+")


def tokens(text: str) -> list[str]:
    """Lower-case, accent-free word tokens (the same normalisation as grounding)."""
    return _TOKEN.findall(normalise(text))


class BM25Ranker:
    """BM25 (Okapi, rank_bm25 defaults k1=1.5, b=0.75) over each track's ``title artist album`` text.

    Ties are broken by catalog order (track id), so rankings are deterministic.
    """

    def __init__(self, catalog: Sequence[CatalogTrack]) -> None:
        from rank_bm25 import BM25Okapi  # a dependency of the project; imported here to keep import light

        self.track_ids = [t.track_id for t in catalog]
        self._index = {tid: i for i, tid in enumerate(self.track_ids)}
        self._bm25 = BM25Okapi([tokens(f"{t.title} {t.artist} {t.album}") or ["<empty>"] for t in catalog])

    def scores(self, query: str) -> np.ndarray:
        """The BM25 score of every catalog track for ``query``."""
        return np.asarray(self._bm25.get_scores(tokens(query)), dtype=float)

    def rank(self, query: str, k: int, among: Sequence[str] | None = None) -> list[str]:
        """The ``k`` best track ids for ``query``: over the whole catalog, or only ``among`` (ids not in it skipped)."""
        scores = self.scores(query)
        rows = (
            np.arange(len(scores))
            if among is None
            else np.array([self._index[t] for t in dict.fromkeys(among) if t in self._index], dtype=int)
        )
        if rows.size == 0:
            return []
        order = rows[np.lexsort((rows, -scores[rows]))]  # best score first, ties by catalog order
        return [self.track_ids[i] for i in order[:k]]

"""Synthetic canonical feedback logs at a chosen number of interaction events, for the data_prep benchmarks.

Vectorised (numpy + pyarrow, no Python loop over rows), seeded, written once per size as Parquet in the
canonical types of ``data_prep/schemas.py``. The shape follows the simulator: sessions of 1–3 turns
(a turn after the first is announced by a ``refine`` event whose text is its request), two A/B variants
per turn sharing session, turn, request and 20 candidates, 8–12 track playlists picked by a better
(``sim-a``) and a worse (``sim-b``) policy, position-biased examination, events of every kind, and a
few % of bad rows (unknown track ids, negative ``ms_played``, duplicated events) for the quarantine.

    .venv/bin/python bench/synth_logs.py 1M [--seed 0] [--root .cache/bench/prep]
"""

from __future__ import annotations

import argparse
import shutil
import uuid
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from pyspark.sql.types import StructType

from data_prep import schemas

TS = pa.timestamp("us", tz="UTC")
_ARROW = {
    "string": pa.string(),
    "int": pa.int32(),
    "bigint": pa.int64(),
    "double": pa.float64(),
    "timestamp": TS,
    "array<string>": pa.list_(pa.string()),
}


def arrow_schema(struct: StructType) -> pa.Schema:
    """The Arrow schema that Spark reads back as ``struct`` (data_prep's canonical input types)."""
    return pa.schema([(f.name, _ARROW[f.dataType.simpleString()]) for f in struct.fields])


RESPONSES = arrow_schema(schemas.RESPONSES)
INTERACTIONS = arrow_schema(schemas.INTERACTIONS)
CATALOG = arrow_schema(schemas.CATALOG)
NAMES = ("responses", "interactions", "catalog")

# The event kinds the generator writes (skip_1/2/3 are MSSD's, not produced here).
EVENTS = ("play", "skip", "complete", "save", "like", "dislike", "remove", "thumbs_up", "thumbs_down", "refine")  # fmt: skip
_E = {name: code for code, name in enumerate(EVENTS)}
GENRES = ("rock", "pop", "jazz", "folk", "soul", "metal", "country", "electronic", "classical", "reggae")  # fmt: skip
MOODS = ("mellow", "upbeat", "dark", "dreamy", "energetic", "sad", "happy", "chill", "angry", "romantic")  # fmt: skip
ACTIVITIES = ("running", "studying", "a road trip", "cooking", "a party", "sleep", "the gym", "focus")
WORDS = ("blue", "night", "river", "fire", "golden", "echo", "city", "heart", "storm", "silver", "wild", "moon")  # fmt: skip
MORE = ("more upbeat", "less vocals", "older songs", "no ballads", "more like the first one", "faster")

CANDIDATES = 20  # per request, shared by both variants
MIN_LEN, MAX_LEN = 8, 12  # playlist length range
QUALITY = (0.8, 0.3)  # policy sim-a, sim-b: weight of the true fit in the ranking
EVENTS_PER_SESSION = 23.5  # measured mean; only sizes the chunks, the event count is exact anyway
CHUNK_EVENTS = 1_000_000  # one Parquet file per chunk, so Spark reads in parallel
BAD = {"unknown_track_id": 0.005, "negative_ms_played": 0.005, "duplicate_event": 0.01}


def parse_size(text: str) -> int:
    """``"100k"`` → 100000, ``"16M"`` → 16000000, ``"2500"`` → 2500."""
    scale = {"k": 1_000, "m": 1_000_000}.get(text[-1].lower(), 1)
    return int(float(text[:-1] if scale > 1 else text) * scale)


def _ids(prefix: str, values: np.ndarray) -> pa.Array:
    return pc.binary_join_element_wise(prefix, pc.cast(pa.array(values), pa.string()), "")


def _pick(rng: np.random.Generator, words: tuple[str, ...], n: int) -> pa.Array:
    return pa.array(words).take(rng.integers(0, len(words), n))


def _join(*parts: pa.Array | str) -> pa.Array:
    return pc.binary_join_element_wise(*parts, " ")


def make_catalog(rng: np.random.Generator, n_tracks: int) -> pa.Table:
    """A catalog of ``n_tracks`` tracks (ids ``t0``, ``t1``, …) by ``n_tracks // 10`` artists."""
    artist = rng.integers(0, max(1, n_tracks // 10), n_tracks)
    genre = rng.integers(0, len(GENRES), n_tracks)
    cols = {
        "track_id": _ids("t", np.arange(n_tracks)),
        "title": _join(_pick(rng, WORDS, n_tracks), _pick(rng, WORDS, n_tracks)),
        "artist": _ids("Artist ", artist),
        "album": _join(_pick(rng, WORDS, n_tracks), "Sessions"),
        "genre": pa.array(GENRES).take(genre),
        "subgenre": _join(_pick(rng, MOODS, n_tracks), pa.array(GENRES).take(genre)),
        "year": rng.integers(1960, 2025, n_tracks).astype(np.int32),
        "duration_ms": rng.integers(120_000, 420_000, n_tracks),
        "popularity": rng.integers(0, 101, n_tracks).astype(np.int32),
        **{k: rng.random(n_tracks) for k in ("energy", "valence", "danceability", "acousticness")},
        "tempo": rng.uniform(60.0, 200.0, n_tracks),
    }
    return pa.table(cols, schema=CATALOG)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return np.asarray(1.0 / (1.0 + np.exp(-x)))


def make_chunk(
    rng: np.random.Generator,
    chunk: int,
    n_sessions: int,
    n_users: int,
    durations: np.ndarray,
    max_events: int,
) -> tuple[pa.Table, pa.Table]:
    """Responses and interactions of ``n_sessions`` sessions, cut after ``max_events`` interactions.

    Interactions come sorted by response, then time; a cut drops the responses after the last event kept.
    """
    n_tracks = len(durations)
    turns = rng.choice([1, 2, 3], size=n_sessions, p=[0.6, 0.28, 0.12])
    n_turns = int(turns.sum())
    sess = np.repeat(np.arange(n_sessions), turns)
    first = np.cumsum(turns) - turns
    turn_no = np.arange(n_turns) - first[sess]
    has_next = turn_no < turns[sess] - 1
    start = rng.integers(0, 60 * 86_400_000_000, n_sessions) + 1_735_689_600_000_000  # 2025-01-01 UTC
    opening = _join(
        _pick(rng, MOODS, n_turns), _pick(rng, GENRES, n_turns), "for", _pick(rng, ACTIVITIES, n_turns)
    )
    request = pc.if_else(pa.array(turn_no == 0), opening, _join("now", _pick(rng, MORE, n_turns)))
    # history of a turn: the requests of the session's earlier turns, oldest first
    hist_idx = np.repeat(first[sess], turn_no) + (
        np.arange(turn_no.sum()) - np.repeat(np.cumsum(turn_no) - turn_no, turn_no)
    )
    history = pa.ListArray.from_arrays(
        np.concatenate([[0], np.cumsum(turn_no)]).astype(np.int32), request.take(hist_idx)
    )
    step = rng.integers(1, (n_tracks - 1) // (CANDIDATES - 1) + 1, n_turns)  # distinct candidates
    cand = (rng.integers(0, n_tracks, n_turns)[:, None] + np.arange(CANDIDATES) * step[:, None]) % n_tracks
    fit = rng.beta(2.0, 2.0, (n_turns, CANDIDATES))

    n_resp = 2 * n_turns
    rturn = np.repeat(np.arange(n_turns), 2)
    variant = np.tile([0, 1], n_turns)
    quality = np.array(QUALITY)[variant][:, None]
    order = np.argsort(-(quality * fit[rturn] + (1 - quality) * rng.random((n_resp, CANDIDATES))), axis=1)[
        :, :MAX_LEN
    ]
    length = rng.integers(MIN_LEN, MAX_LEN + 1, n_resp)
    shown = np.arange(MAX_LEN) < length[:, None]
    picked = np.take_along_axis(cand[rturn], order, axis=1)
    pfit = np.take_along_axis(fit[rturn], order, axis=1)
    resp_ts = start[sess][rturn] + turn_no[rturn] * 2_400_000_000 + variant * 1_200_000_000
    cat_ids = _ids("t", np.arange(n_tracks))
    offsets = np.concatenate([[0], np.cumsum(length)]).astype(np.int32)
    rid = pc.binary_join_element_wise(f"r{chunk}-", pc.cast(pa.array(np.arange(n_resp)), pa.string()), "")
    responses = pa.table(
        {
            "response_id": rid,
            "session_id": _ids(f"s{chunk}-", sess[rturn]),
            "user_id": _ids("u", rng.integers(0, n_users, n_sessions)[sess][rturn]),
            "turn": turn_no[rturn].astype(np.int32),
            "ts": pa.array(resp_ts, TS),
            "request": request.take(rturn),
            "history": history.take(rturn),
            "candidates": pa.ListArray.from_arrays(
                np.arange(0, CANDIDATES * n_turns + 1, CANDIDATES, dtype=np.int32), cat_ids.take(cand.ravel())
            ).take(rturn),
            "track_ids": pa.ListArray.from_arrays(offsets, cat_ids.take(picked[shown])),
            "policy": pa.array(["sim-a", "sim-b"]).take(variant),
        },
        schema=RESPONSES,
    )

    # Track events: a shown track is examined with a probability that falls with its position.
    examined = shown & (rng.random((n_resp, MAX_LEN)) < 0.97 * 0.88 ** np.arange(MAX_LEN))
    r, pos = np.nonzero(examined)
    f, track = pfit[r, pos], picked[r, pos]
    n = len(r)
    skip = rng.random(n) < _sigmoid(-8.0 * (f - 0.5))
    early = skip & (rng.random(n) < 0.3 + 0.5 * (1.0 - f))
    play = ~skip & (rng.random(n) < 0.08)
    frac = np.where(early, rng.uniform(0.02, 0.12, n), np.where(skip, rng.uniform(0.3, 0.8, n), 1.0))
    frac = np.where(play, rng.uniform(0.2, 0.9, n), frac)
    ms = (durations[track] * frac).astype(np.int64)
    event = np.select([skip, play], [_E["skip"], _E["play"]], _E["complete"])
    react = {
        "save": ~early & (rng.random(n) < 0.5 * f**4),
        "like": ~early & (rng.random(n) < 0.35 * f**4),
        "dislike": rng.random(n) < np.where(f < 0.2, 0.35, 0.01),
        "remove": rng.random(n) < np.where(f < 0.15, 0.2, 0.0),
    }
    at = (ms * rng.uniform(0.3, 0.95, n)).astype(np.int64)
    parts = [(r, pos, track, event, ms)] + [
        (r[m], pos[m], track[m], np.full(m.sum(), _E[name]), at[m]) for name, m in react.items()
    ]

    # Response-level events: thumbs follow the mean fit; the last variant shown before a next turn refines.
    sat = np.where(shown, pfit, 0).sum(axis=1) / length
    u = rng.random(n_resp)
    p_up, p_down = 0.3 * _sigmoid(12.0 * (sat - 0.6)), 0.3 * _sigmoid(12.0 * (0.45 - sat))
    thumbs = np.nonzero(u < p_up + p_down)[0]
    refine = np.nonzero((variant == 1) & has_next[rturn])[0]
    up = np.where(u[thumbs] < p_up[thumbs], _E["thumbs_up"], _E["thumbs_down"])
    for rows, code in ((thumbs, up), (refine, _E["refine"])):
        parts.append(
            (rows, np.full(len(rows), -1), np.full(len(rows), -1), np.broadcast_to(code, len(rows)), 0 * rows)
        )
    e_r, e_pos, e_track, e_event, e_ms = (np.concatenate([p[i] for p in parts]) for i in range(5))
    e_ts = resp_ts[e_r] + (np.where(e_pos < 0, length[e_r], e_pos) * 45_000 + e_ms) * 1000
    e_text = np.full(len(e_r), -1)
    e_text[len(e_r) - len(refine) :] = rturn[refine] + 1  # a refine carries the next turn's request

    # Bad rows for the quarantine: unknown tracks, negative play time, duplicated events.
    is_track = e_track >= 0
    e_ms = np.where(is_track & (rng.random(len(e_r)) < BAD["negative_ms_played"]), -e_ms - 1, e_ms)
    unknown = pa.array(is_track & (rng.random(len(e_r)) < BAD["unknown_track_id"]))
    track_id = pc.if_else(unknown, _ids("tx", e_track), cat_ids.take(pa.array(e_track, mask=~is_track)))
    dup = np.nonzero(rng.random(len(e_r)) < BAD["duplicate_event"])[0]
    idx = np.concatenate([np.arange(len(e_r)), dup])
    idx = idx[np.lexsort((e_ts[idx], e_r[idx]))][:max_events]
    if len(idx) == max_events:
        responses = responses.slice(0, int(e_r[idx[-1]]) + 1)
    interactions = pa.table(
        {
            "response_id": rid.take(e_r[idx]),
            "track_id": track_id.take(idx),
            "position": e_pos[idx].astype(np.int32),
            "event": pa.array(EVENTS).take(e_event[idx]),
            "ms_played": e_ms[idx],
            "track_ms": np.where(is_track, durations[e_track], 0)[idx],
            "ts": pa.array(e_ts[idx], TS),
            "text": request.take(pa.array(e_text[idx], mask=e_text[idx] < 0)),
        },
        schema=INTERACTIONS,
    )
    return responses, interactions


def generate(out: Path, events: int, seed: int = 0, n_tracks: int = 50_000) -> None:
    """Write ``out/{responses,interactions,catalog}/part-*.parquet`` holding exactly ``events`` interactions."""
    catalog = make_catalog(np.random.default_rng([seed, 0]), n_tracks)
    durations = catalog.column("duration_ms").to_numpy()
    for name in NAMES:
        (out / name).mkdir(parents=True)
    pq.write_table(catalog, out / "catalog" / "part-00000.parquet")
    n_users = max(20, events // 120)  # about five sessions a user
    written, chunk = 0, 0
    while written < events:
        want = min(events - written, CHUNK_EVENTS)
        n_sessions = int(want / EVENTS_PER_SESSION * 1.05) + 2
        rng = np.random.default_rng([seed, 1, chunk])
        responses, interactions = make_chunk(rng, chunk, n_sessions, n_users, durations, want)
        pq.write_table(responses, out / "responses" / f"part-{chunk:05d}.parquet")
        pq.write_table(interactions, out / "interactions" / f"part-{chunk:05d}.parquet")
        written += interactions.num_rows
        chunk += 1


def cached_logs(events: int, seed: int = 0, root: Path = Path(".cache/bench/prep")) -> dict[str, Path]:
    """The logs for ``events`` interactions under ``root``, generated on first use (atomically).

    Returns:
        The Parquet directory of each log: ``responses``, ``interactions``, ``catalog``.
    """
    out = root / (f"{events}" if seed == 0 else f"{events}-seed{seed}")
    if not out.exists():
        tmp = out.with_name(f".{out.name}.tmp-{uuid.uuid4().hex[:8]}")
        try:
            generate(tmp, events, seed)
            tmp.rename(out)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return {name: out / name for name in NAMES}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("size", help="interaction events, e.g. 100k, 1M, 16M")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--root", type=Path, default=Path(".cache/bench/prep"))
    args = parser.parse_args()
    paths = cached_logs(parse_size(args.size), args.seed, args.root)
    for name, path in paths.items():
        print(f"{name}: {path} ({pq.ParquetDataset(path).read(columns=[]).num_rows} rows)")


if __name__ == "__main__":
    main()

"""Property-based fuzzing of the data_prep job: malformed rows never crash it, and every row is accounted for.

Hypothesis draws responses and interactions logs that mix valid rows with broken ones (missing fields,
wrong types, nulls, unknown ids, negative or absurd numbers, events before their playlist, duplicates,
invalid UTF-8, over-long requests, garbage and blank lines), writes them as JSON Lines and runs the whole
job on them. Each example is a Spark job, so there are few examples, with up to 35 rows per log; shrinking
is off because one shrink step costs as much as an example (a failure still prints the example that failed).
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, example, given, settings
from hypothesis import strategies as st

from data_prep.job import run
from data_prep.schemas import EVENTS

pytestmark = pytest.mark.integration

KEY = "fuzz"
TRACKS = ["t1", "t2", "t3", "t4"]
RESPONSE_IDS = ["r1", "r2", "r3", "r4", "r5"]  # few, so that duplicates happen
TIMES = ["2024-05-01T10:00:00Z", "2024-05-01T10:00:30Z", "2024-05-01T10:05:00Z"]
BEFORE = "2024-05-01T09:00:00Z"  # before every response: ts_before_response
# A valid anchor in each log, so that no file lacks a required column (that is a file-level error).
ANCHOR_RESPONSE = {"response_id": "anchor", "session_id": "s0", "user_id": "u0", "turn": 0, "ts": TIMES[0],
                   "request": "calm piano", "history": [], "candidates": TRACKS, "track_ids": ["t1", "t2"],
                   "policy": "p0"}  # fmt: skip
ANCHOR_EVENT = {"response_id": "anchor", "track_id": "t1", "position": 0, "event": "complete",
                "ms_played": 200_000, "track_ms": 200_000, "ts": TIMES[2], "text": None}  # fmt: skip
CATALOG = [
    *({"track_id": t, "title": f"Song {t}", "artist": f"Artist {t}", "duration_ms": 200_000} for t in TRACKS),
    {"track_id": "t9", "title": "no artist"},  # quarantined: the job still runs on the rest
]
INT_EXTREMES = [-1, 0, 2**31 - 1, -(2**31), 2**31, 2**63 - 1, -(2**63), 2**64, 10**30]
# Values of the wrong type (or absurd) for any field.
WRONG = st.one_of(
    st.sampled_from(INT_EXTREMES),
    st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(),
    st.text(max_size=8),
    st.lists(st.integers(-5, 5), max_size=2),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)
TEXT = st.text(max_size=30)


@st.composite
def valid_response(draw: st.DrawFn) -> dict[str, Any]:
    return {
        "response_id": draw(st.sampled_from(RESPONSE_IDS)),
        "session_id": draw(st.sampled_from(["s1", "s2"])),
        "user_id": draw(st.sampled_from(["u1", "u2"])),
        "turn": draw(st.integers(0, 2)),
        "ts": draw(st.sampled_from(TIMES)),
        "request": draw(st.text(min_size=1, max_size=30)),
        "history": draw(st.lists(TEXT, max_size=2)),
        "candidates": draw(st.lists(st.sampled_from(TRACKS), max_size=4, unique=True)),
        "track_ids": draw(st.lists(st.sampled_from(TRACKS), min_size=1, max_size=4)),
        "policy": draw(st.sampled_from(["p0", "curated-mpd", None])),
    }


@st.composite
def valid_event(draw: st.DrawFn) -> dict[str, Any]:
    event = draw(st.sampled_from(EVENTS))
    return {
        "response_id": draw(st.sampled_from([*RESPONSE_IDS, "anchor"])),
        "track_id": draw(st.sampled_from(TRACKS)),
        "position": draw(st.integers(-1, 4)),
        "event": event,
        "ms_played": draw(st.integers(0, 400_000) | st.none()),
        "track_ms": draw(st.sampled_from([200_000, 0, None])),
        "ts": draw(st.sampled_from(TIMES)),
        "text": draw(TEXT) if event == "refine" else None,
    }


@st.composite
def broken(
    draw: st.DrawFn, row: st.SearchStrategy[dict[str, Any]], overrides: dict[str, Any]
) -> dict[str, Any]:
    """A valid row with one or two fields dropped, nulled, mistyped or set to an edge value."""
    out = dict(draw(row))
    for _ in range(draw(st.integers(1, 2))):
        key = draw(st.sampled_from(sorted(out)))
        how = draw(st.sampled_from(["drop", "null", "wrong", "edge"]))
        if how == "drop":
            out.pop(key)
        elif how == "null":
            out[key] = None
        elif how == "wrong":
            out[key] = draw(WRONG)
        else:
            field, values = draw(st.sampled_from(sorted(overrides.items())))
            out[field] = draw(st.sampled_from(values))
    return out


RESPONSE_EDGES = {
    "request": ["", "   ", "x" * 501, "é" * 500, "🎵 ok"],
    "track_ids": [[], ["zzz"], ["t1", None], ["t1", "t1", "t1"]],
    "candidates": [["nope"], [None], []],
    "turn": INT_EXTREMES,
    "ts": [BEFORE, "yesterday", "2024-13-45T99:00:00Z", 0],
    "response_id": ["", "r404"],
}
EVENT_EDGES = {
    "ms_played": [-5, 10**12, 2**63 - 1, -(2**63), 10**30, 12.5, "x"],
    "track_ms": [0, -200_000, 2**63 - 1, 9 * 10**18, None],
    "event": ["teleport", "", "SKIP", "thumbs_up", "refine"],
    "track_id": ["zzz", None, ""],
    "response_id": ["r404", "", None],
    "position": INT_EXTREMES,
    "ts": [BEFORE, "not a time", None],
}


@st.composite
def line(draw: st.DrawFn, row: st.SearchStrategy[dict[str, Any]]) -> bytes:
    """One JSON Lines row, possibly corrupted: invalid UTF-8, truncated or not JSON at all."""
    text = json.dumps(draw(row), ensure_ascii=draw(st.booleans())).encode()
    how = draw(st.sampled_from(["as is", "as is", "as is", "bad utf-8", "truncated", "garbage", "array"]))
    if how == "bad utf-8":
        at = draw(st.integers(0, len(text)))
        text = (
            text[:at]
            + draw(st.sampled_from([b"\xff", b"\xc3\x28", b"\xed\xa0\x80", b"\xe2\x82"]))
            + text[at:]
        )
    elif how == "truncated":
        text = text[: draw(st.integers(1, max(1, len(text) - 1)))]
    elif how == "garbage":
        # Any bytes but line ends, and something besides spaces (blank lines are not rows).
        text = draw(st.binary(min_size=1, max_size=30).filter(lambda b: b"\n" not in b and b"\r" not in b))
        text = text if text.strip(b" ") else b"?" + text
    elif how == "array":
        text = b"[" + text + b"]"
    return text


@st.composite
def log(
    draw: st.DrawFn, anchor: dict[str, Any], valid: st.SearchStrategy, edges: dict[str, Any]
) -> list[bytes]:
    rows = [json.dumps(anchor).encode()]
    rows += draw(st.lists(line(valid), max_size=12))
    rows += draw(st.lists(line(broken(valid, edges)), max_size=16))
    rows += draw(st.lists(st.sampled_from(rows), max_size=3))  # exact duplicate lines
    blank = draw(st.lists(st.sampled_from([b"", b"   "]), max_size=2))
    return draw(st.permutations(rows + blank))


def _write(path: Path, lines: list[bytes]) -> tuple[str, int]:
    path.write_bytes(b"".join(raw + b"\n" for raw in lines))
    return str(path), sum(1 for raw in lines if raw.strip(b" "))


# Edge values that once crashed the job: a turn of 2**31 - 1 on a refined playlist overflowed ``turn + 1``,
# a track_ms near 2**63 overflowed the absurd-ms_played bound.
EDGE_RESPONSE = {**ANCHOR_RESPONSE, "response_id": "r1", "session_id": "s1", "turn": 2**31 - 1}
EDGE_EVENTS = [
    {**ANCHOR_EVENT, "response_id": "r1", "event": "refine", "track_id": None, "text": "more"},
    {**ANCHOR_EVENT, "response_id": "r1", "event": "skip", "ms_played": 5, "track_ms": 2**63 - 1},
    {**ANCHOR_EVENT, "response_id": "r1", "event": "play", "ms_played": 5, "track_ms": 9 * 10**18},
]


@settings(
    max_examples=3,  # each example is a whole Spark job (so: few, with many rows each); the fixed example
    # carries the known crash cases
    deadline=None,
    database=None,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@example(
    responses=[json.dumps(ANCHOR_RESPONSE).encode(), json.dumps(EDGE_RESPONSE).encode()],
    interactions=[json.dumps(e).encode() for e in [ANCHOR_EVENT, *EDGE_EVENTS]],
)
@given(
    responses=log(ANCHOR_RESPONSE, valid_response(), RESPONSE_EDGES),
    interactions=log(ANCHOR_EVENT, valid_event(), EVENT_EDGES),
)
def test_job_survives_and_accounts_for_malformed_rows(
    spark, responses: list[bytes], interactions: list[bytes]
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        catalog, n_catalog = _write(root / "catalog.jsonl", [json.dumps(r).encode() for r in CATALOG])
        responses_path, n_responses = _write(root / "responses.jsonl", responses)
        interactions_path, n_interactions = _write(root / "interactions.jsonl", interactions)
        manifest = run(
            spark,
            responses=responses_path,
            interactions=interactions_path,
            catalog=catalog,
            intents=None,
            out=str(root / "out"),
            hash_key=KEY,
        )
    inputs, outputs = manifest["inputs"], manifest["outputs"]
    for name, lines_written in (
        ("catalog", n_catalog),
        ("responses", n_responses),
        ("interactions", n_interactions),
    ):
        entry = inputs[name]
        assert entry["rows_in"] == lines_written, name
        assert entry["rows_in"] == entry["rows_out"] + entry["rows_quarantined"], name
        assert entry["rows_quarantined"] == sum(entry["quarantined_by_reason"].values()), name
        assert outputs[f"validated/{name}"]["rows"] == entry["rows_out"], name
    assert outputs["quarantine"]["rows"] == sum(e["rows_quarantined"] for e in inputs.values())
    # The anchors are valid whatever else the logs hold.
    assert inputs["responses"]["rows_out"] >= 1 and inputs["interactions"]["rows_out"] >= 1

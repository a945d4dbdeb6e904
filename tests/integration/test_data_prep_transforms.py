"""data_prep transforms on tiny inline frames, compared as whole frames."""

from __future__ import annotations

import hashlib
import hmac
from datetime import datetime

import pytest
from pyspark.sql import Row
from pyspark.testing import assertDataFrameEqual, assertSchemaEqual

from data_prep import schemas
from data_prep.pairs import finalize_pairs
from data_prep.rewards import response_rewards, track_rewards, track_values
from data_prep.splits import add_prompt_id, add_user_key, assign_split, redact_user_id
from data_prep.strategies import response_pairs
from data_prep.validation import parse_lines
from playlist.keys import prompt_id_of, split_of, user_key_of

pytestmark = pytest.mark.integration

INTERACTIONS = (
    "response_id string, track_id string, event string, ms_played long, track_ms long, ts timestamp"
)
T0, T1 = datetime(2024, 5, 1, 10, 0), datetime(2024, 5, 1, 10, 5)


def test_track_and_response_rewards(spark) -> None:
    events = spark.createDataFrame(
        [
            ("r1", "a", "complete", 200, 200, T0),
            ("r1", "a", "save", 200, 200, T0),
            ("r1", "a", "like", 200, 200, T0),  # 1 + 2 + 1.5 = 4.5, clipped to 3
            ("r1", "b", "skip", 40, 200, T0),  # 0.2 played: early
            ("r1", "c", "skip", 100, 200, T0),  # 0.5 played: late
            ("r1", "d", "skip", None, 200, T0),  # unknown play time: early
            ("r3", None, "thumbs_down", None, None, T0),
            ("r2", "a", "play", 10, 200, T0),
            ("r2", "x", "complete", 200, 200, T0),  # not in r2's playlist: ignored for the response
            ("r2", None, "thumbs_up", None, None, T0),
            ("r2", None, "thumbs_up", None, None, T1),
        ],
        INTERACTIONS,
    )
    assertDataFrameEqual(
        track_rewards(events),
        [
            Row(response_id="r1", track_id="a", reward=3.0),
            Row(response_id="r1", track_id="b", reward=-1.0),
            Row(response_id="r1", track_id="c", reward=-0.25),
            Row(response_id="r1", track_id="d", reward=-1.0),
            Row(response_id="r2", track_id="a", reward=0.0),
            Row(response_id="r2", track_id="x", reward=1.0),
        ],
    )
    responses = spark.createDataFrame(
        [("r1", ["a", "b", "c", "d", "e"]), ("r2", ["a", "b"]), ("r3", ["a"])],
        "response_id string, track_ids array<string>",
    )
    values = track_values(responses, events, None)
    rewards = response_rewards(responses, events, values)
    assertSchemaEqual(rewards.schema, schemas.RESPONSE_REWARDS)
    # Thumbs now replace the implicit reward with their weight (they used to add a bonus clipped to 1), so
    # the thumbs_down moved from r1 to r3, which keeps r1's implicit mean under test: (3 - 1 - 0.25 - 1) / 5.
    assertDataFrameEqual(
        rewards,
        [
            Row(response_id="r1", reward=0.75 / 5),
            Row(response_id="r2", reward=3.0),  # thumbs_up weight, whatever the tracks say
            Row(response_id="r3", reward=-3.0),  # thumbs_down weight
        ],
    )
    custom = track_rewards(
        events.where("track_id = 'c'"), weights={**_weights(), "skip_late": -0.5}, early_skip=0.6
    )
    assertDataFrameEqual(custom, [Row(response_id="r1", track_id="c", reward=-1.0)])


def _weights() -> dict[str, float]:
    from data_prep.rewards import DEFAULT_WEIGHTS

    return dict(DEFAULT_WEIGHTS)


def _msg(text: str) -> list[Row]:
    return [Row(role="assistant", content=text)]


def test_pairs_margin_ties_cap_and_candidates(spark) -> None:
    # Each prompt reads differently: finalize_pairs drops pairs whose prompt and answers read the same.
    prompt = {p: [Row(role="user", content=p)] for p in ("p1", "p2", "p3", "p4")}
    rows = [
        # p1: cap 2 keeps the two widest margins
        ("r1", "p1", "u1", "train", ["c"], 1.0, prompt["p1"], _msg("A")),
        ("r2", "p1", "u1", "train", ["c"], 0.5, prompt["p1"], _msg("B")),
        ("r3", "p1", "u1", "train", ["c"], 0.0, prompt["p1"], _msg("C")),
        ("r4", "p1", "u1", "train", ["c"], 0.4, prompt["p1"], _msg("D")),
        # p2: r5/r6 margin below 0.3, r6/r10 tie, r5/r7 the same playlist: only r6>r7 and r10>r7 pair
        ("r5", "p2", "u2", "eval", ["c"], 0.7, prompt["p2"], _msg("A")),
        ("r6", "p2", "u2", "eval", ["c"], 0.45, prompt["p2"], _msg("B")),
        ("r10", "p2", "u2", "eval", ["c"], 0.45, prompt["p2"], _msg("C")),
        ("r7", "p2", "u2", "eval", ["c"], 0.0, prompt["p2"], _msg("A")),
        # p3: different candidate lists cannot share a prompt
        ("r8", "p3", "u3", "eval", ["c"], 1.0, prompt["p3"], _msg("A")),
        ("r9", "p3", "u3", "eval", ["d"], 0.0, prompt["p3"], _msg("B")),
        # p4: 0.7 - 0.4 is 0.29999999999999993 in floating point, still a 0.3 margin
        ("r11", "p4", "u4", "train", ["c"], 0.7, prompt["p4"], _msg("A")),
        ("r12", "p4", "u4", "train", ["c"], 0.4, prompt["p4"], _msg("B")),
    ]
    scored = spark.createDataFrame(
        rows,
        "response_id string, prompt_id string, user_key string, split string, candidates array<string>, "
        "reward double, prompt array<struct<role:string,content:string>>, "
        "completion array<struct<role:string,content:string>>",
    )
    pairs = finalize_pairs(response_pairs(scored, min_margin=0.3), max_per_prompt=2, max_per_user=100)
    assertSchemaEqual(pairs.schema, schemas.PAIRS)
    got = pairs.select("prompt_id", "chosen", "rejected", "margin", "strategy", "split")
    assertDataFrameEqual(
        got,
        [
            Row(prompt_id="p1", chosen=_msg("A"), rejected=_msg("C"), margin=1.0, strategy="response", split="train"),
            Row(prompt_id="p1", chosen=_msg("A"), rejected=_msg("D"), margin=0.6, strategy="response", split="train"),
            Row(prompt_id="p2", chosen=_msg("B"), rejected=_msg("A"), margin=0.45, strategy="response", split="eval"),
            Row(prompt_id="p2", chosen=_msg("C"), rejected=_msg("A"), margin=0.45, strategy="response", split="eval"),
            Row(prompt_id="p4", chosen=_msg("A"), rejected=_msg("B"), margin=0.3, strategy="response", split="train"),
        ],
    )  # fmt: skip
    again = finalize_pairs(response_pairs(scored, min_margin=0.3), max_per_prompt=2, max_per_user=100)
    assertDataFrameEqual(again, pairs)


def _hmac16(key: str, text: str) -> str:
    return hmac.new(key.encode(), text.encode(), hashlib.sha256).hexdigest()[:16]


def test_user_key_split_and_prompt_id_match_python_hmac(spark) -> None:
    users = [f"user{i}" for i in range(20)] + ["ünïcode"]
    frame = spark.createDataFrame(
        [(u, "s1", 2, "calm") for u in users], "user_id string, session_id string, turn int, request string"
    )
    for key in ("k", "x" * 100):  # keys longer than the SHA-256 block are hashed first
        out = assign_split(add_prompt_id(add_user_key(frame, key), key), 0.3)
        assert "user_id" not in out.columns
        expected = []
        for u in users:
            uk = _hmac16(key, u)
            split = "eval" if int(uk, 16) % 1000 < 300 else "train"
            assert (user_key_of(u, key), split_of(uk, 0.3)) == (uk, split)  # the Python twins agree
            pid = _hmac16(key, "s1\x1f2\x1fcalm")
            assert prompt_id_of("s1", 2, "calm", key) == pid
            expected.append(
                Row(session_id="s1", turn=2, request="calm", user_key=uk, prompt_id=pid, split=split)
            )
        assertDataFrameEqual(out, expected)


def test_parse_lines_and_redaction(spark) -> None:
    lines = spark.createDataFrame(
        [
            ('{"response_id": "a", "event": "play", "position": 3, "ts": "2024-01-01T00:00:00Z"}',),
            ('{"response_id": "b", "event": "play", "position": "three"}',),
            ('{"event": "play", "position": 1.5}',),
            ('{"response_id": "c", "event": "play", "ms_played": 12.5}',),
            ('{"response_id": "d", "event": "play"',),
        ],
        "raw string",
    )
    parsed = parse_lines(lines, schemas.INTERACTIONS, schemas.REQUIRED["interactions"])
    assertSchemaEqual(parsed.drop("raw", "reason").schema, schemas.INTERACTIONS)
    assertDataFrameEqual(
        parsed.select("response_id", "position", "reason"),
        [
            Row(response_id="a", position=3, reason=None),
            Row(response_id="b", position=None, reason="wrong_type:position"),
            Row(response_id=None, position=None, reason="missing_field:response_id"),
            Row(response_id="c", position=None, reason="wrong_type:ms_played"),
            Row(response_id=None, position=None, reason="malformed_json"),
        ],
    )
    raws = spark.createDataFrame(
        [
            ('{"user_id": "alice", "x": 1}', "alice"),
            ('{"user_id" : "bob\\"s", "x"', None),
            ('{"user_id": 42}', "42"),
        ],
        "raw string, user_id string",
    )
    redacted = [r.raw for r in redact_user_id(raws, "k").collect()]
    assert redacted == [
        f'{{"user_key": "{_hmac16("k", "alice")}", "x": 1}}',
        '{"user_key": "<redacted>", "x"',
        f'{{"user_key": "{_hmac16("k", "42")}"}}',
    ]

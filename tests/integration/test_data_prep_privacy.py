"""Personal data never reaches an output: contact details in requests are masked, user ids are keyed hashes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from pyspark.sql import Row
from pyspark.sql import functions as F
from pyspark.testing import assertDataFrameEqual

from data_prep.job import run
from data_prep.privacy import mask_text

pytestmark = pytest.mark.integration

KEY = "privacy-test"
TS = "2024-05-01T10:00:00Z"
EMAIL = "ana.lopez@example.com"
PHONES = ("+1 415-555-0100", "(415) 555 0199", "07700 900123", "0049 30 1234567")
USERS = ("user-ana-7f3a", "user-bo-19c2", "user-cy-88d1", "user-dee-4411", "user-eve-5b20", "user-fay-0c0c")


def test_mask_text(spark) -> None:
    cases = [
        (f"send it to {EMAIL} please", "send it to [email] please"),
        ("a.b-c+tag@mail.example.co.uk", "[email]"),
        ("call +1 415-555-0100", "call [phone]"),
        ("(415) 555 0100 after 6", "[phone] after 6"),
        ("uk: 07700 900123.", "uk: [phone]."),
        ("de 0049 30 1234567", "de [phone]"),
        ("+44 (0)20 7946 0958", "[phone]"),
        # Kept: years and ranges, short numbers, track numbers of 8 digits, ids of 16 digits or more.
        ("90s hits 1990-1999", "90s hits 1990-1999"),
        ("top 100 of 2010", "top 100 of 2010"),
        ("track 12345678 again", "track 12345678 again"),
        ("id 1234567890123456", "id 1234567890123456"),
        ("id 12345678901234567890", "id 12345678901234567890"),
        # Digits glued to letters are part of a word (a code, a hash), not a phone number.
        ("code 1234567890abc", "code 1234567890abc"),
        ("key a1234567890", "key a1234567890"),
        ("nothing to hide", "nothing to hide"),
        (None, None),
    ]
    frame = spark.createDataFrame([(text,) for text, _ in cases], "text string")
    assertDataFrameEqual(
        frame.select("text", mask_text(F.col("text")).alias("masked")),
        [Row(text=text, masked=masked) for text, masked in cases],
    )


def _resp(rid: str, user: str, request: str, **kw: Any) -> dict[str, Any]:
    row = {"response_id": rid, "session_id": f"s-{rid}", "user_id": user, "turn": 0, "ts": TS,
           "request": request, "history": [], "candidates": ["t1", "t2", "t3"], "track_ids": ["t1", "t2"],
           "policy": "p0"}  # fmt: skip
    return {k: v for k, v in {**row, **kw}.items() if v is not None}


def _event(rid: str, track: str | None, event: str, **kw: Any) -> dict[str, Any]:
    row = {"response_id": rid, "track_id": track, "position": 0, "event": event, "ms_played": 200_000,
           "track_ms": 200_000, "ts": TS, "text": None}  # fmt: skip
    return {k: v for k, v in {**row, **kw}.items() if v is not None}


def _write(path: Path, rows: list[Any]) -> str:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))
    return str(path)


@pytest.fixture(scope="module")
def job(spark, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("privacy")
    email, us, uk_phone, de_phone = EMAIL, PHONES[0], PHONES[2], PHONES[3]
    catalog = [
        {"track_id": f"t{i}", "title": f"Song {i}", "artist": f"Artist {i}", "duration_ms": 200_000}
        for i in range(1, 4)
    ]
    responses = [
        _resp("p1", USERS[0], f"send it to {email} or call {us}"),  # valid, masked request
        _resp(
            "p2", USERS[1], "more like this", history=[f"my number is {PHONES[1]}"]
        ),  # valid, masked history
        _resp("p3", USERS[2], "calm piano"),  # valid, nothing to mask
        _resp("p3b", USERS[2], "calm piano", track_ids=["t3"]),  # a second variant: pairs get built
        _resp("q1", USERS[3], "x" * 500 + f" reach me at {email}"),  # request_too_long
        f'{{"response_id": "q2", "user_id": "{USERS[4]}", "request": "call {uk_phone}',  # malformed_json
        _resp("p1", USERS[0], f"again: {email}, {us}", ts="2024-05-01T11:00:00Z"),  # duplicate_response_id
        _resp("q5", USERS[5], f"mail {email}", session_id=None),  # missing_field:session_id
    ]
    interactions = [
        _event("p1", "t1", "complete"),
        _event("p1", None, "refine", ms_played=0, track_ms=0, text=f"text me on {de_phone}"),  # valid, masked
        _event("p3", "t1", "complete"),
        _event("p3b", "t3", "skip", ms_played=1_000),
        _event("q1", None, "refine", text=f"it is {email}"),  # unknown_response: quarantined, masked
    ]
    paths = {
        "catalog": _write(root / "catalog.jsonl", catalog),
        "responses": _write(root / "responses.jsonl", responses),
        "interactions": _write(root / "interactions.jsonl", interactions),
    }
    out = root / "out"
    manifest = run(spark, **paths, intents=None, out=str(out), hash_key=KEY)
    return {"manifest": manifest, "out": out, "inputs": paths}


def _every_output_as_text(out: Path) -> dict[str, str]:
    """Every file under ``out``: Parquet files decoded to their values, any other file as its bytes."""
    texts = {}
    for path in sorted(p for p in out.rglob("*") if p.is_file()):
        if path.suffix == ".parquet":
            rows = pq.read_table(path).to_pylist()
            texts[str(path)] = json.dumps(rows, default=str, ensure_ascii=False)
        else:
            texts[str(path)] = path.read_bytes().decode("utf-8", errors="replace")
    return texts


def test_contact_details_reach_no_output(job: dict[str, Any]) -> None:
    texts = _every_output_as_text(job["out"])
    parquet = [p for p in texts if p.endswith(".parquet")]
    assert any("/quarantine/" in p for p in parquet) and any("/validated/interactions/" in p for p in parquet)
    assert any(p.endswith("manifest.json") for p in texts)
    raw_inputs = (
        Path(job["inputs"]["responses"]).read_text() + Path(job["inputs"]["interactions"]).read_text()
    )
    for secret in (EMAIL, *PHONES):
        assert secret in raw_inputs  # the test data does carry them
        leaks = [path for path, text in texts.items() if secret in text]
        assert not leaks, f"{secret!r} found in {leaks}"
    # The masks stand where the details were: in the validated request, the history and the refinement text.
    everything = "\n".join(texts.values())
    assert "send it to [email] or call [phone]" in everything
    assert "my number is [phone]" in everything
    assert "text me on [phone]" in everything
    # Valid responses whose request or history changed: p1 (request) and p2 (history). The quarantined q1,
    # q2, q5 and p1's duplicate are masked too, but they are not requests of the prepared data.
    assert job["manifest"]["requests_masked"] == 2


def test_raw_user_ids_reach_no_output(job: dict[str, Any]) -> None:
    texts = _every_output_as_text(job["out"])
    raw_inputs = Path(job["inputs"]["responses"]).read_text()
    assert len(texts) > 10
    for user in USERS:
        assert user in raw_inputs
        leaks = [path for path, text in texts.items() if user in text]
        assert not leaks, f"{user!r} found in {leaks}"
    # The quarantined responses keep a keyed hash in place of the id.
    assert job["manifest"]["inputs"]["responses"]["rows_quarantined"] == 4
    assert sum(text.count('\\"user_key\\": \\"') for text in texts.values()) >= 4

"""End-to-end data_prep job on a small inline dataset with injected bad rows."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from pyspark.sql import DataFrame, Row
from pyspark.sql import functions as F
from pyspark.testing import assertDataFrameEqual

from data_prep.job import run
from data_prep.manifest import output_entry
from data_prep.settings import PairSettings, PrepSettings
from data_prep.validation import InputSchemaError
from playlist.prompts import Track, render_playlist, render_prompt

pytestmark = pytest.mark.integration

KEY = "k4"  # with this key alice and bob are train users, carol and dave eval users (at eval_fraction 0.5)
USERS = ("user-alice", "user-bob", "user-carol", "user-dave")
TS = "2024-05-01T10:00:00Z"
CANDS = ["t1", "t2", "t3", "t4", "t5", "t6"]


def _track(i: int) -> dict:
    return {"track_id": f"t{i}", "title": f"Song {i}", "artist": f"Artist {i}", "album": "A", "genre": "folk",
            "subgenre": None, "year": 1990 + i, "duration_ms": 200_000, "popularity": 50, "energy": i / 10,
            "valence": 0.5, "danceability": 0.5, "acousticness": 0.5, "tempo": 100.0}  # fmt: skip


def _resp(rid: str, session: str, user: str | None, track_ids: list[str], **kw: object) -> dict:
    row = {"response_id": rid, "session_id": session, "user_id": user, "turn": 0, "ts": TS,
           "request": "mellow folk", "history": [], "candidates": CANDS, "track_ids": track_ids, "policy": "p0"}  # fmt: skip
    row.update(kw)
    return {k: v for k, v in row.items() if v is not None}


def _event(rid: str, track: str | None, event: str, ms: object = 200_000, **kw: object) -> dict:
    row = {"response_id": rid, "track_id": track, "position": 0, "event": event, "ms_played": ms,
           "track_ms": 200_000, "ts": TS, "text": None}  # fmt: skip
    row.update(kw)
    return {k: v for k, v in row.items() if v is not None}


def _write(path: Path, rows: list[object]) -> str:
    """Write JSON Lines; bytes and str items are written verbatim (bad lines)."""
    with path.open("wb") as f:
        for row in rows:
            if isinstance(row, bytes):
                f.write(row + b"\n")
            elif isinstance(row, str):
                f.write(row.encode() + b"\n")
            else:
                f.write(json.dumps(row).encode() + b"\n")
    return str(path)


def _dataset(root: Path) -> dict[str, str]:
    root.mkdir(parents=True, exist_ok=True)
    good_event = _event("r1", "t1", "complete")
    catalog = [_track(i) for i in range(1, 7)] + [
        {"track_id": None, "title": "x", "artist": "y"},
        {"track_id": "t1", "title": "Song 1", "artist": "Zz dup"},  # sorts after the original t1
        {"track_id": "t9", "title": "a", "artist": "b", "year": "abc"},
        {"track_id": "t8", "title": "c", "artist": "d", "energy": 1.7},
    ]
    responses = [
        _resp("r1", "s1", "user-alice", ["t1", "t2", "t3"]),
        _resp("r2", "s1", "user-alice", ["t4", "t5"]),
        _resp("r3", "s2", "user-bob", ["t1"], candidates=["t1", "t2"], history=["something calm"]),
        _resp("r4", "s3", "user-carol", ["t2", "t3"], candidates=["t1", "t2", "t3"]),
        _resp("r5", "s3", "user-carol", ["t3"], candidates=["t1", "t2", "t3"]),
        _resp("r6", "s3", "user-carol", ["t1"], candidates=["t1", "t2", "t3"]),
        _resp("r7", "s4", "user-dave", ["t1"]),
        _resp("r8", "s4", "user-dave", ["t2"]),
        # bad rows
        _resp("b1", "s9", None, ["t1"]),
        _resp("b2", "s9", "user-alice", ["t1"], turn="abc"),
        _resp("b3", "s9", "user-alice", ["t1"], request="   "),
        _resp("b4", "s9", "user-alice", ["t1"], request="x" * 501),
        _resp("b5", "s9", "user-alice", ["t1", "zzz"]),
        _resp("b6", "s9", "user-alice", ["t1"], candidates=["nope"]),
        json.dumps(_resp("b7", "s9", "user-alice", ["t1"], request="caf@"))
        .encode()
        .replace(b"@", b"\xff\xfe"),
        '{"response_id": "b8", "session_id": ',
        _resp("r1", "s1", "user-alice", ["t6"], ts="2024-05-01T11:00:00Z"),
        _resp("b9", "s9", "user-alice", []),
    ]
    interactions = [
        good_event,
        _event("r1", "t1", "save"),
        _event("r1", "t2", "like", position=1),
        _event("r1", None, "thumbs_up", ms=None, track_ms=None),
        _event("r2", "t4", "skip", 10_000),
        _event("r2", "t5", "dislike", position=1),
        _event("r3", "t1", "complete"),
        _event("r4", "t2", "skip", 150_000),
        _event("r4", "t3", "complete", position=1),
        _event("r5", "t3", "complete"),
        # bad rows
        _event("r1", "t3", "play", "x"),
        _event("b5", "t1", "complete"),
        _event("r404", "t1", "complete"),
        _event("r1", "zzz", "complete"),
        good_event,
        _event("r1", "t1", "teleport"),
        _event("r1", "t2", "play", -5),
        _event("r1", "t2", "play", 10_000_000),
        _event("r1", None, "skip"),
        _event(None, "t1", "play"),  # type: ignore[arg-type]
        "not json at all",
        json.dumps(_event("r1", None, "refine", text="more @")).encode().replace(b"@", b"\xff"),
    ]
    intents = [
        {"response_id": "r4", "intent": json.dumps({"category": "genre_mood", "genre": "folk"})},
        {"response_id": "b5", "intent": "{}"},
        {"response_id": "r4", "intent": "{}"},
    ]
    return {
        "catalog": _write(root / "catalog.jsonl", catalog),
        "responses": _write(root / "responses.jsonl", responses),
        "interactions": _write(root / "interactions.jsonl", interactions),
        "intents": _write(root / "intents.jsonl", intents),
    }


# (input, reason, "response_id/track_id/event" of the raw row): every bad row, with its one reason.
EXPECTED_QUARANTINE = [
    ("catalog", "missing_field:track_id", ""),
    ("catalog", "duplicate_track_id", "t1"),
    ("catalog", "wrong_type:year", "t9"),
    ("catalog", "energy_out_of_range", "t8"),
    ("responses", "missing_field:user_id", "b1"),
    ("responses", "wrong_type:turn", "b2"),
    ("responses", "empty_request", "b3"),
    ("responses", "request_too_long", "b4"),
    ("responses", "unknown_track_id", "b5"),
    ("responses", "unknown_track_id", "b6"),
    ("responses", "invalid_utf8", "b7"),
    ("responses", "malformed_json", ""),
    ("responses", "duplicate_response_id", "r1"),
    ("responses", "empty_playlist", "b9"),
    ("interactions", "wrong_type:ms_played", "r1/t3/play"),
    ("interactions", "unknown_response", "b5/t1/complete"),
    ("interactions", "unknown_response", "r404/t1/complete"),
    ("interactions", "unknown_track_id", "r1/zzz/complete"),
    ("interactions", "duplicate_event", "r1/t1/complete"),
    ("interactions", "unknown_event", "r1/t1/teleport"),
    ("interactions", "negative_ms_played", "r1/t2/play"),
    ("interactions", "absurd_ms_played", "r1/t2/play"),
    ("interactions", "missing_field:track_id", "r1/skip"),
    ("interactions", "missing_field:response_id", "t1/play"),
    ("interactions", "malformed_json", ""),
    ("interactions", "invalid_utf8", "r1/refine"),
    ("intents", "unknown_response", "b5"),
    ("intents", "duplicate_response_id", "r4"),
]


def _prompt(spark_track_ids: list[str], history: list[str] | None = None) -> list[Row]:
    tracks = [
        Track(t, f"Artist {t[1:]}", f"Song {t[1:]}", "folk", 1990 + int(t[1:]), int(t[1:]) / 10, 0.5)
        for t in spark_track_ids
    ]
    return [Row(**m) for m in render_prompt("mellow folk", history or [], tracks)]


def _answer(track_ids: list[str], candidates: list[str]) -> list[Row]:
    def track(t: str) -> Track:
        return Track(t, f"Artist {t[1:]}", f"Song {t[1:]}", "folk", 1990 + int(t[1:]), int(t[1:]) / 10, 0.5)

    text = render_playlist([track(t) for t in track_ids], [track(t) for t in candidates])
    return [Row(role="assistant", content=text)]


def test_run_writes_consistent_outputs(spark, tmp_path: Path) -> None:
    paths = _dataset(tmp_path / "in")
    # Candidates as logged, so the expected prompts can be written out (the training shuffle has its own
    # tests in test_data_prep_render.py).
    settings = PrepSettings(
        eval_fraction=0.5, pairs=PairSettings(max_per_prompt=2), shuffle_train_candidates=False
    )
    kwargs = dict(paths, settings=settings, hash_key=KEY)
    manifest = run(spark, out=str(tmp_path / "out1"), **kwargs)
    out = tmp_path / "out1"

    quarantine = spark.read.parquet(str(out / "quarantine"))
    key = F.concat_ws(
        "/", *[F.get_json_object("raw", f"$.{c}") for c in ("response_id", "track_id", "event")]
    )
    assertDataFrameEqual(
        quarantine.select("input", "reason", key.alias("key")),
        [Row(input=i, reason=r, key=k) for i, r, k in EXPECTED_QUARANTINE],
    )
    reasons = {name: {} for name in ("catalog", "responses", "interactions", "intents")}
    for name, reason, _ in EXPECTED_QUARANTINE:
        reasons[name][reason] = reasons[name].get(reason, 0) + 1
    expected_inputs = {"catalog": (10, 6), "responses": (18, 8), "interactions": (22, 10), "intents": (3, 1)}
    for name, (rows_in, rows_out) in expected_inputs.items():
        entry = manifest["inputs"][name]
        assert (entry["rows_in"], entry["rows_out"]) == (rows_in, rows_out), name
        assert entry["rows_in"] == entry["rows_out"] + entry["rows_quarantined"]
        assert entry["quarantined_by_reason"] == reasons[name]
    for name, entry in manifest["inputs"].items():
        assert re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{16}", entry["fingerprint"]), name
        assert int(entry["fingerprint"][:8], 16) == entry["rows_in"], name
    assert json.loads((out / "manifest.json").read_text()) == manifest
    # Shown tracks per playlist position (positions of r1..r8's playlists) and those with a valid track-level
    # event: position 0: 8 shown, examined r1/t1, r2/t4, r3/t1, r4/t2, r5/t3; position 1: r1/t2, r2/t5,
    # r4/t3; position 2: r1/t3, whose only event (a play with ms_played "x") was quarantined. No position was
    # shown min_position_support (20) times, so none has an estimate and every propensity is 1.
    assert manifest["position_propensity"] == [
        {"position": 0, "shown": 8, "examined": 5, "propensity": 1.0},
        {"position": 1, "shown": 3, "examined": 3, "propensity": 1.0},
        {"position": 2, "shown": 1, "examined": 0, "propensity": 1.0},
    ]
    assert manifest["requests_masked"] == 0
    assert manifest["config"] == {**settings.model_dump(mode="json"), "seed": 0}
    # Counted as they were written: what is on disk, read back, has the same rows and fingerprint.
    for name, entry in manifest["outputs"].items():
        assert output_entry(spark.read.parquet(entry["path"]), entry["path"]) == entry, name
    for name, entry in manifest["inputs"].items():  # counted by the pass that checked their columns
        lines = (
            spark.read.text(entry["path"]).where(F.trim("value") != "").select(F.col("value").alias("raw"))
        )
        assert output_entry(lines, entry["path"])["fingerprint"] == entry["fingerprint"], name

    pairs = spark.read.parquet(str(out / "pairs"))
    s3 = ["t1", "t2", "t3"]
    # Track rewards (no position weighting, see above): r1: t1 complete + save 3, t2 like 1.5; r2: t4 early
    # skip -1, t5 dislike -2; r3: t1 1; r4: t2 late skip -0.25, t3 1; r5: t3 1. Responses: r1 has a thumbs_up,
    # which replaces its implicit (3 + 1.5 + 0) / 3 = 1.5 with 3.0 (it used to add a bonus: 2.5); r2 (-1 - 2) / 2
    # = -1.5; r4 (1 - 0.25) / 2 = 0.375; r5 1; r6, r7, r8 0.
    # "response" pairs (min_margin 0.3): s1 r1 > r2 by 4.5; s3 r5 > r6 by 1, r5 > r4 by 0.625, r4 > r6 by 0.375
    # (dropped: max_per_prompt 2); s4's r7 and r8 tie.
    # "edit": r2's t4 (early skip) and t5 (dislike) go, replaced in order by the tracks saved or liked in its
    # session s1 (r1's t1 and t2, among r2's candidates): chosen [t1, t2], (3 + 1.5) / 2 = 2.25 over -1.5. Its
    # margin, 3.75, ranks second on s1's prompt, under the cap. r4's late skip is not negative.
    # No "refinement" pair (the one refine event was quarantined) and no "liked_disliked" one (no playlist
    # has both a like and a dislike).
    assertDataFrameEqual(
        pairs.select("prompt", "chosen", "rejected", "reward_chosen", "reward_rejected", "margin", "strategy", "split"),
        [
            Row(prompt=_prompt(CANDS), chosen=_answer(["t1", "t2", "t3"], CANDS), rejected=_answer(["t4", "t5"], CANDS),
                reward_chosen=3.0, reward_rejected=-1.5, margin=4.5, strategy="response", split="train"),
            Row(prompt=_prompt(CANDS), chosen=_answer(["t1", "t2"], CANDS), rejected=_answer(["t4", "t5"], CANDS),
                reward_chosen=2.25, reward_rejected=-1.5, margin=3.75, strategy="edit", split="train"),
            Row(prompt=_prompt(s3), chosen=_answer(["t3"], s3), rejected=_answer(["t1"], s3),
                reward_chosen=1.0, reward_rejected=0.0, margin=1.0, strategy="response", split="eval"),
            Row(prompt=_prompt(s3), chosen=_answer(["t3"], s3), rejected=_answer(["t2", "t3"], s3),
                reward_chosen=1.0, reward_rejected=0.375, margin=0.625, strategy="response", split="eval"),
        ],
    )  # fmt: skip
    assert manifest["strategy_counts"] == {"edit": 1, "response": 3}

    # Unpaired (KTO): desirable from 0.5 (r1 3.0, r3 1.0, r5 1.0), undesirable up to -0.5 (r2 -1.5).
    unpaired = spark.read.parquet(str(out / "unpaired"))
    assertDataFrameEqual(
        unpaired.select("prompt", "completion", "label", "reward", "split"),
        [
            Row(prompt=_prompt(CANDS), completion=_answer(["t1", "t2", "t3"], CANDS), label=True, reward=3.0,
                split="train"),
            Row(prompt=_prompt(CANDS), completion=_answer(["t4", "t5"], CANDS), label=False, reward=-1.5,
                split="train"),
            Row(prompt=_prompt(["t1", "t2"], ["something calm"]), completion=_answer(["t1"], ["t1", "t2"]),
                label=True, reward=1.0, split="train"),
            Row(prompt=_prompt(s3), completion=_answer(["t3"], s3), label=True, reward=1.0, split="eval"),
        ],
    )  # fmt: skip

    # SFT: the best response of each prompt from reward 0.3 (s4's best, r7, has 0); all from feedback.
    sft = spark.read.parquet(str(out / "sft"))
    assertDataFrameEqual(
        sft.select("messages", "reward", "origin", "split"),
        [
            Row(messages=_prompt(CANDS) + _answer(["t1", "t2", "t3"], CANDS), reward=3.0, origin="feedback",
                split="train"),
            Row(messages=_prompt(["t1", "t2"], ["something calm"]) + _answer(["t1"], ["t1", "t2"]), reward=1.0,
                origin="feedback", split="train"),
            Row(messages=_prompt(s3) + _answer(["t3"], s3), reward=1.0, origin="feedback", split="eval"),
        ],
    )  # fmt: skip

    evals = spark.read.parquet(str(out / "eval"))
    intent = json.dumps({"category": "genre_mood", "genre": "folk"})
    assertDataFrameEqual(
        evals.select("request", "candidates", "prompt", "intent", "reference"),
        [
            Row(request="mellow folk", candidates=s3, prompt=_prompt(s3), intent=intent, reference=["t3"]),
            Row(
                request="mellow folk", candidates=CANDS, prompt=_prompt(CANDS), intent=None, reference=["t1"]
            ),
        ],
    )
    # A user is on one side only.
    train_users = {
        r.user_key for r in pairs.union(pairs).where("split = 'train'").select("user_key").collect()
    }
    assert train_users.isdisjoint({r.user_key for r in evals.select("user_key").collect()})

    # No raw user id anywhere in the outputs or the manifest.
    text = (out / "manifest.json").read_text()
    for name in manifest["outputs"]:
        frame = spark.read.parquet(str(out / name))
        text += "\n".join(r[0] for r in frame.select(F.to_json(F.struct("*"))).collect())
    assert "user-" not in text
    assert not list(tmp_path.glob(".out1*")), "temp dir left behind"

    again = run(spark, out=str(tmp_path / "out2"), **kwargs)
    assert {n: e["fingerprint"] for n, e in again["outputs"].items()} == {
        n: e["fingerprint"] for n, e in manifest["outputs"].items()
    }


def test_missing_column_names_file_and_column(spark, tmp_path: Path) -> None:
    paths = _dataset(tmp_path / "in")
    rows = [{k: v for k, v in json.loads(line).items() if k != "request"}
            for line in Path(paths["responses"]).read_bytes().splitlines()[:3]]  # fmt: skip
    broken = _write(tmp_path / "in" / "broken.jsonl", rows)
    with pytest.raises(InputSchemaError, match=r"responses: .*broken\.jsonl has no column 'request'"):
        run(spark, **dict(paths, responses=broken), out=str(tmp_path / "out"), hash_key=KEY)
    with pytest.raises(InputSchemaError, match=r"catalog: cannot read .*nowhere\.jsonl"):
        run(
            spark,
            **dict(paths, catalog=str(tmp_path / "nowhere.jsonl")),
            out=str(tmp_path / "o"),
            hash_key=KEY,
        )
    assert not (tmp_path / "out").exists()


def test_parquet_input_goes_through_the_same_validation(spark, tmp_path: Path) -> None:
    from data_prep import schemas
    from data_prep.inputs import parse_input, read_input
    from data_prep.validation import quarantine_rows, valid_rows, validate_catalog

    def read(name: str) -> DataFrame:
        rows, _ = read_input(spark, "catalog", str(tmp_path / name), schemas.REQUIRED["catalog"])
        return validate_catalog(parse_input(rows, schemas.CATALOG, schemas.REQUIRED["catalog"]))

    rows = [_track(1), _track(2), {**_track(3), "title": None}, {**_track(4), "artist": "Bad \ufffd"}]
    frame = spark.createDataFrame(
        [tuple(r[f] for f in schemas.CATALOG.fieldNames()) for r in rows], schemas.CATALOG
    )
    frame.write.parquet(str(tmp_path / "catalog"))
    checked = read("catalog")
    assertDataFrameEqual(valid_rows(checked, schemas.CATALOG), frame.where("track_id IN ('t1', 't2')"))
    assertDataFrameEqual(
        quarantine_rows(checked, "catalog").select(
            "reason", F.get_json_object("raw", "$.track_id").alias("id")
        ),
        [Row(reason="missing_field:title", id="t3"), Row(reason="invalid_utf8", id="t4")],
    )

    # A file that wrote `year` as text and carries a column of its own: cast, and kept as read for the quarantine.
    odd = frame.limit(2).withColumn("year", F.when(F.col("track_id") == "t1", "1991").otherwise("nineties"))
    odd.withColumn("note", F.lit("x")).write.parquet(str(tmp_path / "odd"))
    checked = read("odd")
    assertDataFrameEqual(valid_rows(checked, schemas.CATALOG), frame.where("track_id = 't1'"))
    bad = quarantine_rows(checked, "catalog").collect()
    assert [r.reason for r in bad] == ["wrong_type:year"]
    expected = {**_track(2), "year": "nineties", "note": "x"}
    assert json.loads(bad[0].raw) == {k: v for k, v in expected.items() if v is not None}

    # Files of one input that differ: the one without `artist` is named.
    frame.write.parquet(str(tmp_path / "mixed"))
    frame.drop("artist").write.mode("append").parquet(str(tmp_path / "mixed"))
    with pytest.raises(InputSchemaError, match=r"catalog: [^;]*part-[^;]* has no column 'artist'$"):
        read_input(spark, "catalog", str(tmp_path / "mixed"), schemas.REQUIRED["catalog"])

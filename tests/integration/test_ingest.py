"""The public-data adapters on the real datasets in ../shared/data: exact counts, schemas, data_prep, CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pyspark.sql import SparkSession
from pyspark.sql import functions as F
from pyspark.testing import assertSchemaEqual
from typer.testing import CliRunner

from data_prep import schemas
from data_prep.adapters import ingest
from data_prep.adapters.cpcd import GOALS
from data_prep.job import run as prep_run

pytestmark = pytest.mark.integration

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"
needs_data = pytest.mark.skipif(
    not DATA.is_dir(), reason=f"public datasets absent: {DATA} (see ../shared/data/README.md)"
)
CANONICAL = {"responses": schemas.RESPONSES, "interactions": schemas.INTERACTIONS, "catalog": schemas.CATALOG}


def _check_common(spark: SparkSession, out: Path, manifest: dict) -> None:
    """Accounting holds, the manifest matches what is on disk, and every output has its canonical schema."""
    assert json.loads((out / "manifest.json").read_text()) == manifest
    for name, entry in manifest["inputs"].items():
        assert entry["rows_in"] == entry["rows_out"] + entry["rows_quarantined"], name
    for name, schema in CANONICAL.items():
        frame = spark.read.parquet(str(out / name))
        assertSchemaEqual(frame.schema, schema)
        assert frame.count() == manifest["outputs"][name]["rows"]
    assertSchemaEqual(spark.read.parquet(str(out / "quarantine")).schema, schemas.QUARANTINE)


def _prep(spark: SparkSession, out: Path, tmp: Path) -> dict:
    """data_prep.job.run over the adapter's output."""
    return prep_run(
        spark,
        responses=str(out / "responses"),
        interactions=str(out / "interactions"),
        catalog=str(out / "catalog"),
        intents=None,
        out=str(tmp / "prepared"),
        hash_key="k",
    )


def _event_counts(spark: SparkSession, out: Path) -> dict[str, int]:
    rows = spark.read.parquet(str(out / "interactions")).groupBy("event").count().collect()
    return {r["event"]: int(r["count"]) for r in rows}


@needs_data
def test_cpcd_counts_schemas_and_data_prep(spark, tmp_path: Path) -> None:
    out = tmp_path / "cpcd"
    manifest = ingest(spark, "cpcd", str(DATA / "cpcd" / "cpcd_v1.dialogs.dev.train.jsonl"), str(out))
    _check_common(spark, out, manifest)
    inputs, stats = manifest["inputs"], manifest["stats"]
    assert inputs["conversations"]["rows_in"] == 400
    assert inputs["turns"]["rows_in"] == 2129
    # 349 turns show no track with metadata (no search, or only unannotated results): no playlist to learn from.
    assert inputs["turns"]["quarantined_by_reason"] == {"no_track_with_metadata": 349}
    assert (inputs["liked"]["rows_in"], inputs["liked"]["rows_out"]) == (7578, 7578)
    assert (inputs["disliked"]["rows_in"], inputs["disliked"]["rows_out"]) == (2163, 2163)
    assert stats["turns_with_feedback"] == 1768
    assert stats["turns_with_like_and_dislike"] == 578
    assert stats["liked_x_disliked"] == 7557
    assert stats["goal_tracks"] == 7578
    assert _event_counts(spark, out) == {"like": 7578, "dislike": 2163}
    responses = spark.read.parquet(str(out / "responses"))
    assert responses.count() == 2129 - 349
    # Every turn with feedback became a response.
    assert responses.where(F.col("response_id").isin(*_feedback_turns(spark, out))).count() == 1768
    goals = spark.read.parquet(str(out / "goals"))
    assertSchemaEqual(goals.schema, GOALS)
    assert goals.select(F.sum(F.size("goal_track_ids"))).first()[0] == 7578

    prepared = _prep(spark, out, tmp_path)
    for name, rows in (("responses", 1780), ("interactions", 7578 + 2163), ("catalog", 7527)):
        assert (prepared["inputs"][name]["rows_out"], prepared["inputs"][name]["rows_quarantined"]) == (
            rows,
            0,
        )
    pairs = spark.read.parquet(prepared["outputs"]["pairs"]["path"]).where(
        F.col("strategy") == "liked_disliked"
    )
    # Liked-vs-disliked pairs come from exactly the turns with both a like and a dislike.
    assert pairs.select("prompt_id").distinct().count() == 578


def _feedback_turns(spark: SparkSession, out: Path) -> list[str]:
    rows = spark.read.parquet(str(out / "interactions")).select("response_id").distinct().collect()
    return [r["response_id"] for r in rows]


@needs_data
def test_mssd_counts_schemas_and_data_prep(spark, tmp_path: Path) -> None:
    out = tmp_path / "mssd"
    manifest = ingest(spark, "mssd", str(DATA / "mssd"), str(out))
    _check_common(spark, out, manifest)
    inputs = manifest["inputs"]
    for name, rows in (("log", 1180), ("tracknames", 1180), ("sessions", 169), ("tracks", 917)):
        assert (inputs[name]["rows_in"], inputs[name]["rows_quarantined"]) == (rows, 0), name
    events = {"skip_1": 427, "skip_2": 152, "skip_3": 186, "complete": 398, "play": 17}
    assert _event_counts(spark, out) == events
    responses = spark.read.parquet(str(out / "responses"))
    assert responses.select(F.sum(F.size("track_ids"))).first()[0] == 1180
    assert responses.where(F.size("candidates") > 0).count() == 0

    prepared = _prep(spark, out, tmp_path)
    for name, rows in (("responses", 169), ("interactions", 1180), ("catalog", 917)):
        assert (prepared["inputs"][name]["rows_out"], prepared["inputs"][name]["rows_quarantined"]) == (
            rows,
            0,
        )


@needs_data
def test_mpd_counts_and_schemas(spark, tmp_path: Path) -> None:
    out = tmp_path / "mpd"
    manifest = ingest(spark, "mpd", str(DATA / "mpd" / "mpd_playlists_1000.jsonl.gz"), str(out))
    _check_common(spark, out, manifest)
    inputs = manifest["inputs"]
    assert (inputs["playlists"]["rows_in"], inputs["playlists"]["rows_out"]) == (1000, 1000)
    assert (inputs["track_entries"]["rows_in"], inputs["track_entries"]["rows_out"]) == (97081, 97081)
    assert (inputs["tracks"]["rows_in"], inputs["tracks"]["rows_out"]) == (50433, 50433)
    responses = spark.read.parquet(str(out / "responses"))
    assert responses.select(F.sum(F.size("track_ids"))).first()[0] == 97081
    assert {r["policy"] for r in responses.select("policy").distinct().collect()} == {"curated:mpd"}
    assert manifest["outputs"]["interactions"]["rows"] == 0


@needs_data
def test_mpd_slice_format_through_data_prep(spark, tmp_path: Path) -> None:
    out = tmp_path / "slice"
    manifest = ingest(spark, "mpd", str(DATA / "mpd" / "mpd.slice.0-999.first29playlists.json"), str(out))
    _check_common(spark, out, manifest)
    # The README's 1,447 is the sum of num_tracks; one playlist lists one entry more than its num_tracks.
    assert (manifest["stats"]["playlists"], manifest["stats"]["track_entries"]) == (29, 1448)
    catalog = spark.read.parquet(str(out / "catalog"))
    assert catalog.where(F.col("album").isNull() | F.col("duration_ms").isNull()).count() == 0

    prepared = _prep(spark, out, tmp_path)
    for name, rows in (("responses", 29), ("catalog", manifest["outputs"]["catalog"]["rows"])):
        assert (prepared["inputs"][name]["rows_out"], prepared["inputs"][name]["rows_quarantined"]) == (
            rows,
            0,
        )


@needs_data
def test_cli_ingest_prints_counts(tmp_path: Path) -> None:
    from encore.cli import app

    out = tmp_path / "mssd"
    result = CliRunner().invoke(
        app, ["ingest", "mssd", str(DATA / "mssd"), "--out", str(out), "--spark-master", "local[1]"]
    )
    assert result.exit_code == 0, result.output
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["inputs"]["log"]["rows_in"] == 1180
    assert "1180" in result.output and "169" in result.output

    bad = CliRunner().invoke(app, ["ingest", "spotify", str(DATA / "mssd"), "--out", str(tmp_path / "x")])
    assert bad.exit_code != 0

"""Public-data adapter transforms (CPCD, MSSD, MPD) on tiny inline inputs, compared as whole frames."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import pytest
from pyspark.sql import DataFrame, Row
from pyspark.sql import functions as F
from pyspark.sql.types import StringType, StructField, StructType
from pyspark.testing import assertDataFrameEqual, assertSchemaEqual

from data_prep import schemas
from data_prep.adapters import common, cpcd, mpd, mssd
from data_prep.manifest import RowAccountingError
from data_prep.validation import InputSchemaError

pytestmark = pytest.mark.integration

RAW = [StructField("raw", StringType()), StructField("reason", StringType())]


def _reasons(checked: DataFrame, key: str) -> DataFrame:
    return checked.where(F.col("reason").isNotNull()).select(key, "reason")


def _meta(title: str | None, artists: str) -> dict:
    return {"track_ids": None, "track_titles": title, "track_artists": artists, "track_release_titles": "LP"}


def _turn(query: str | None, results: list[list[str]], liked: list[str], disliked: list[str]) -> dict:
    return {
        "user_query": query,
        "system_response": "ok",
        "search_queries": [],
        "search_results": results,
        "liked_results": liked,
        "disliked_results": disliked,
    }


def _conversations(spark) -> DataFrame:
    tracks = {t: _meta(f"Song {t}", '["Artist"]') for t in "abcd"}
    tracks["e"] = _meta(None, '["Nobody"]')  # no title: not shown, not in the catalog
    turns = [
        _turn("party songs", [], [], []),
        _turn("upbeat", [["a", "x", "b"], ["b", "c", "e"]], ["a", "d", "zz"], ["c"]),
        _turn("   ", [], ["a"], []),
    ]
    row = {
        "raw": "{}",
        "reason": None,
        "id": "c1",
        "turns": turns,
        "tracks": tracks,
        "goal_playlist": ["a", "d"],
    }
    empty = {"raw": "{}", "reason": None, "id": "c2", "turns": [], "tracks": {}, "goal_playlist": []}
    schema = StructType([*RAW, *cpcd.CONVERSATION.fields])
    return spark.createDataFrame([row, empty], schema)


def test_cpcd_turns_feedback_and_goals(spark) -> None:
    conversations = _conversations(spark)
    turns = cpcd.check_turns(conversations)
    ts = datetime.fromtimestamp(cpcd.START_TS + cpcd.TURN_SECONDS)
    shown = ["a", "b", "c", "d"]  # search results in order, deduplicated, with metadata, then liked "d"
    assertDataFrameEqual(
        cpcd.responses(turns),
        [
            Row(
                response_id="cpcd:c1:1",
                session_id="c1",
                user_id="c1",
                turn=1,
                ts=ts,
                request="upbeat",
                history=["party songs"],
                candidates=shown,
                track_ids=shown,
                policy=cpcd.POLICY,
            )
        ],
    )
    assertDataFrameEqual(
        _reasons(turns, "response_id"),
        [
            Row(response_id="cpcd:c1:0", reason="no_track_with_metadata"),
            Row(response_id="cpcd:c1:2", reason="empty_request"),
        ],
    )
    liked = cpcd.check_feedback(turns, "liked", "like")
    disliked = cpcd.check_feedback(turns, "disliked", "dislike")
    interactions = common.conform(common.good(liked).unionByName(common.good(disliked)), schemas.INTERACTIONS)
    assertSchemaEqual(interactions.schema, schemas.INTERACTIONS)
    assertDataFrameEqual(
        interactions.select("response_id", "track_id", "position", "event", "ts"),
        [
            Row(response_id="cpcd:c1:1", track_id="a", position=0, event="like", ts=ts),
            Row(response_id="cpcd:c1:1", track_id="d", position=3, event="like", ts=ts),
            Row(response_id="cpcd:c1:1", track_id="c", position=2, event="dislike", ts=ts),
        ],
    )
    assertDataFrameEqual(
        _reasons(liked, "track_id"),
        [Row(track_id="zz", reason="unknown_track_id"), Row(track_id="a", reason="turn_quarantined")],
    )
    assertDataFrameEqual(
        cpcd.check_goals(conversations).select("session_id", "goal_track_ids", "reason"),
        [
            Row(session_id="c1", goal_track_ids=["a", "d"], reason=None),
            Row(session_id="c2", goal_track_ids=[], reason="empty_goal_playlist"),
        ],
    )
    counts = cpcd.conversation_counts(conversations).first()
    assert counts is not None and (counts["turns"], counts["liked"], counts["disliked"]) == (3, 4, 1)
    feedback = cpcd.turn_counts(turns).first()
    assert feedback is not None and feedback.asDict() == {
        "turns_with_feedback": 2,
        "turns_with_like_and_dislike": 1,
        "liked_x_disliked": 3,
    }


def test_cpcd_catalog_joins_artists_and_quarantines_untitled(spark) -> None:
    tracks = cpcd.catalog_from_entries(cpcd.catalog_entries(_conversations(spark)))
    catalog = common.conform(common.good(tracks), schemas.CATALOG)
    assertDataFrameEqual(
        catalog.select("track_id", "title", "artist", "album"),
        [Row(track_id=t, title=f"Song {t}", artist="Artist", album="LP") for t in "abcd"],
    )
    assertDataFrameEqual(_reasons(tracks, "track_id"), [Row(track_id="e", reason="missing_field:title")])
    entries = spark.createDataFrame(
        [("t", "A", '["X", "Y"]'), ("t", "A", '["X", "Y"]'), ("u", "B", "plain")],
        "track_id string, title string, artist string",
    )
    assertDataFrameEqual(
        cpcd.catalog_from_entries(
            entries.select("track_id", "title", cpcd._joined(F.col("artist")).alias("artist"))
        ).select("track_id", "artist", "variants"),
        [Row(track_id="t", artist="X, Y", variants=1), Row(track_id="u", artist="plain", variants=1)],
    )


LOG = (
    "session_id string, session_position int, track_id_clean string, skip_1 boolean, skip_2 boolean, "
    "skip_3 boolean, not_skipped boolean, context_type string, date string, hour_of_day int, "
    "_corrupt_record string"
)
NAMES = "session_id string, session_position int, track_name string, artist_name string, album_name string, _corrupt_record string"


def test_mssd_sessions_events_and_quarantine(spark) -> None:
    f, t = False, True
    log = spark.createDataFrame(
        [
            ("s1", 3, "tb", f, t, t, f, "user_collection", "2018-07-15", 9, None),
            ("s1", 2, "ta", t, t, t, f, "user_collection", "2018-07-15", 9, None),
            ("s1", 4, "tc", f, f, f, t, "radio", "2018-07-15", 10, None),
            ("s1", 5, "ta", f, f, f, f, "radio", "2018-07-15", 10, None),
            ("s1", 6, "ta", None, None, None, None, "radio", "2018-07-15", 10, None),  # no label
            ("s2", 2, "tz", f, f, t, f, "charts", "2018-07-16", 23, None),  # no names: unknown track
        ],
        LOG,
    )
    names = spark.createDataFrame(
        [
            ("s1", 2, "A", "Artist A", "LP", None),
            ("s1", 3, "B", "Artist B", None, None),
            ("s1", 4, "C", "Artist C", None, None),
            ("s1", 5, "A", "Artist A", "LP", None),
            ("s9", 1, "Q", "Nobody", None, None),
        ],
        NAMES,
    )
    labelled = mssd.check_log(log)
    checked_names = mssd.check_names(names, labelled)
    tracks = common.catalog_from_entries(mssd.catalog_entries(labelled, checked_names))
    final = mssd.flag_unknown_tracks(labelled, tracks)
    sessions = mssd.check_sessions(final)
    ts9, ts10 = datetime(2018, 7, 15, 9), datetime(2018, 7, 15, 10)
    assertDataFrameEqual(
        common.conform(common.good(sessions), schemas.RESPONSES),
        [
            Row(
                response_id="mssd:s1",
                session_id="s1",
                user_id="s1",
                turn=0,
                ts=ts9,
                request="Play something from my user collection",
                history=[],
                candidates=[],
                track_ids=["ta", "tb", "tc", "ta"],
                policy="mssd:user_collection",
            )
        ],
    )
    assertDataFrameEqual(
        mssd.interactions(final).select("response_id", "track_id", "position", "event", "ts"),
        [
            Row(response_id="mssd:s1", track_id="ta", position=0, event="skip_1", ts=ts9),
            Row(response_id="mssd:s1", track_id="tb", position=1, event="skip_2", ts=ts9),
            Row(response_id="mssd:s1", track_id="tc", position=2, event="complete", ts=ts10),
            Row(response_id="mssd:s1", track_id="ta", position=3, event="play", ts=ts10),
        ],
    )
    assertDataFrameEqual(
        _reasons(final, "session_position"),
        [
            Row(session_position=6, reason="missing_skip_label"),
            Row(session_position=2, reason="unknown_track_id"),
        ],
    )
    assertDataFrameEqual(_reasons(checked_names, "session_id"), [Row(session_id="s9", reason="no_log_row")])
    assertDataFrameEqual(_reasons(tracks, "track_id"), [Row(track_id="tz", reason="missing_field:title")])
    assertDataFrameEqual(_reasons(sessions, "session_id"), [Row(session_id="s2", reason="no_valid_rows")])


def _playlist(pid: int, name: str, uris: list[str | None]) -> dict:
    tracks = [
        {
            "pos": i,
            "artist_name": "Art",
            "track_uri": u,
            "track_name": f"T{i}",
            "album_name": None,
            "duration_ms": None,
        }
        for i, u in enumerate(uris)
    ]
    return {
        "raw": json.dumps({"pid": pid, "name": name}),
        "reason": None,
        "pid": pid,
        "name": name,
        "modified_at": None,
        "tracks": tracks,
    }


def test_mpd_playlists_catalog_and_quarantine(spark) -> None:
    parsed = spark.createDataFrame(
        [
            _playlist(1, " road trip ", ["spotify:track:a", "spotify:track:b", "spotify:track:a"]),
            _playlist(2, "empty", []),
            _playlist(3, "no uri", [None]),
            _playlist(1, "again", ["spotify:track:c"]),
        ],
        StructType([*RAW, *mpd.PLAYLIST.fields]),
    )
    basic = mpd.check_playlists(parsed)
    listed = mpd.track_entries(basic)
    tracks = common.catalog_from_entries(listed.where(common.known_text(F.col("track_id"))))
    entries = mpd.flag_unknown_tracks(listed, tracks)
    playlists = mpd.flag_empty_playlists(basic, entries)
    assertDataFrameEqual(
        mpd.responses(playlists),
        [
            Row(
                response_id="mpd:1",
                session_id="mpd:1",
                user_id="mpd:1",
                turn=0,
                ts=None,
                request="road trip",
                history=[],
                candidates=[],
                track_ids=["a", "b", "a"],
                policy="curated:mpd",
            )
        ],
    )
    assertDataFrameEqual(
        _reasons(playlists, "name"),
        [
            Row(name="empty", reason="empty_playlist"),
            Row(name="no uri", reason="no_known_track"),
            Row(name="again", reason="duplicate_pid"),
        ],
    )
    assertDataFrameEqual(
        _reasons(entries, "index").select("reason"),
        [Row(reason="missing_field:track_uri"), Row(reason="playlist_quarantined")],
    )
    assertDataFrameEqual(
        common.good(tracks).select("track_id", "title", "artist"),
        [
            Row(track_id="a", title="T0", artist="Art"),
            Row(track_id="b", title="T1", artist="Art"),
            Row(track_id="c", title="T0", artist="Art"),
        ],
    )


def test_read_json_lines_flags_bad_lines_and_missing_columns(spark, tmp_path: Path) -> None:
    path = tmp_path / "playlists.jsonl"
    good_line = {"pid": 1, "name": "x", "tracks": []}
    lines = [
        json.dumps(good_line),
        "{not json",
        json.dumps({"pid": "abc", "name": "y", "tracks": []}),
        json.dumps({"pid": 2, "tracks": []}),
        "",
    ]
    path.write_text("\n".join(lines) + "\n")
    parsed = common.read_json_lines(spark, [str(path)], mpd.PLAYLIST, mpd.REQUIRED, "mpd")
    assertDataFrameEqual(
        parsed.select("pid", "reason"),
        [
            Row(pid=1, reason=None),
            Row(pid=None, reason="malformed_json"),
            Row(pid=None, reason="wrong_type"),
            Row(pid=2, reason="missing_field:name"),
        ],
    )
    nameless = tmp_path / "nameless.jsonl"
    nameless.write_text(json.dumps({"pid": 1, "tracks": []}) + "\n")
    with pytest.raises(InputSchemaError, match=r"nameless\.jsonl has no column 'name'"):
        common.read_json_lines(spark, [str(nameless)], mpd.PLAYLIST, mpd.REQUIRED, "mpd")


def test_mssd_missing_column_names_the_file(spark, tmp_path: Path) -> None:
    (tmp_path / "x_log.csv").write_text("session_id,session_position,track_id_clean\ns,1,t\n")
    (tmp_path / "x_tracknames.csv").write_text(
        "session_id,session_position,track_name,artist_name\ns,1,a,b\n"
    )
    with pytest.raises(InputSchemaError, match=r"x_log\.csv has no column 'skip_1'"):
        mssd.run(spark, str(tmp_path), str(tmp_path / "out"))


def test_publish_refuses_rows_that_do_not_add_up(spark, tmp_path: Path) -> None:
    checked = spark.createDataFrame([("{}", None), ("{}", "bad")], "raw string, reason string")
    with pytest.raises(RowAccountingError, match="in=3 out=1 quarantined=1"):
        common.publish(str(tmp_path / "out"), {}, {"rows": ("in", 3, checked)}, {}, {})
    assert not (tmp_path / "out").exists()

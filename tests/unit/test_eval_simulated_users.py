"""Simulated-users task: the simulator's listener replayed on playlists (saves, skip rate)."""

from __future__ import annotations

import pytest

from evaluation.tasks.simulated_users import (
    replay_playlist,
    replay_scores,
    replayable,
    user_for,
    user_panel,
)
from playlist.simulator import make_catalog


def ev(event: str) -> dict[str, str]:
    return {"event": event}


def test_docstring_example() -> None:
    replays = [
        [ev("complete"), ev("save"), ev("skip"), ev("complete"), ev("thumbs_up")],
        [ev("complete"), ev("save"), ev("skip")],
        [ev("complete"), ev("complete"), ev("save"), ev("skip")],
    ]
    assert replay_scores(replays) == pytest.approx(
        {
            "sim_saves": 1.0,
            "sim_save_rate": 3 / 8,
            "sim_skip_rate": 3 / 8,
            "sim_thumbs_up": 1 / 3,
            "sim_thumbs_down": 0.0,
        }
    )


def test_nothing_started_has_no_skip_rate() -> None:
    nothing = replay_scores([[ev("thumbs_down")], []])
    assert nothing["sim_skip_rate"] is None and nothing["sim_save_rate"] is None
    assert set(replay_scores([]).values()) == {None}


@pytest.fixture(scope="module")
def catalog():  # type: ignore[no-untyped-def]
    return make_catalog(0, n_artists=60, n_tracks=400)


def test_panel_and_user_assignment_are_stable(catalog) -> None:  # type: ignore[no-untyped-def]
    panel = user_panel(catalog, n_users=16)
    assert [u.user_id for u in panel] == [u.user_id for u in user_panel(catalog, n_users=16)]
    assert user_for("user-a", panel) == user_for("user-a", panel)
    assert len({user_for(f"user-{i}", panel).user_id for i in range(50)}) > 4
    assert replayable(catalog)
    assert not replayable(catalog.drop(columns=["energy"]))


def test_fitting_playlist_beats_misfit_and_replays_are_deterministic(catalog) -> None:  # type: ignore[no-untyped-def]
    genre = catalog["genre"].iloc[0]
    rows = catalog.to_dict("records")
    intent = {"category": "genre", "genre": genre, "length": 10, "avoid_artists": []}
    panel = user_panel(catalog, n_users=16)
    user = user_for("u", panel)
    # Keep the user's disliked artists out, so the fit depends on the intent's genre only.
    fits = [r for r in rows if r["genre"] == genre and r["artist"] not in user.disliked_artists][:10]
    misfits = [r for r in rows if r["genre"] != genre][:10]
    good = replay_playlist(user, intent, fits, key="req-1", n_replays=32)
    bad = replay_playlist(user, intent, misfits, key="req-1", n_replays=32)
    assert good == replay_playlist(user, intent, fits, key="req-1", n_replays=32)
    assert good["sim_satisfaction"] > bad["sim_satisfaction"]
    assert good["sim_skip_rate"] < bad["sim_skip_rate"]
    assert good["sim_saves"] >= bad["sim_saves"]
    empty = replay_playlist(user, intent, [], key="req-1", n_replays=4)
    assert empty["sim_saves"] == 0.0 and empty["sim_skip_rate"] is None and empty["sim_satisfaction"] == 0.0


def test_save_rate_grows_far_less_with_length_than_saves(catalog) -> None:  # type: ignore[no-untyped-def]
    """Twice as many equally fitting tracks than asked for: more saves per playlist, about the same per track."""
    genre = catalog["genre"].iloc[0]
    user = user_for("u", user_panel(catalog, n_users=16))
    fits = [
        r
        for r in catalog.to_dict("records")
        if r["genre"] == genre and r["artist"] not in user.disliked_artists
    ]
    intent = {"category": "genre", "genre": genre, "length": 10, "avoid_artists": []}
    short, long = (replay_playlist(user, intent, fits[:n], key="req", n_replays=64) for n in (10, 20))
    saves_gain = long["sim_saves"] / short["sim_saves"]
    rate_gain = long["sim_save_rate"] / short["sim_save_rate"]
    assert saves_gain > 1.2 and rate_gain < 1.15 and saves_gain - 1 > 2 * (rate_gain - 1)

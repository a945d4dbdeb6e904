"""Single-process pandas baseline of bench/prep_scaling.py: data_prep's validation filter, rewards and response pairs.

Mirrors, on canonical Parquet logs and with data_prep's default settings:
``data_prep/validation.py`` (which rows are valid; not the quarantine or its reasons),
``data_prep/rewards.py`` (track rewards, position propensities, position-weighted track values, response
rewards with thumbs) and the ``response`` strategy of ``data_prep/strategies.py`` with the caps of
``data_prep/pairs.py``. It does not render prompts or answers, run the other pair strategies, or write
sft/eval/unpaired/quarantine outputs, and it ignores PII masking (which changes no reward). Ties at a
per-prompt or per-user cap are broken by response id, not by Spark's seeded hash.
``tests/integration/test_bench_pandas.py`` checks the rewards and pairs against the Spark job.

    .venv/bin/python bench/pandas_prep.py --responses R --interactions I --catalog C

prints one JSON line: ``s`` and ``cpu`` (wall and CPU seconds from reading the logs to the pairs), ``rss``
(peak RSS of the process in bytes, imports included) and row counts.
"""

from __future__ import annotations

import argparse
import json
import resource
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from data_prep.schemas import EVENTS, REQUIRED, TRACK_EVENTS
from data_prep.settings import PrepSettings, RewardSettings
from data_prep.validation import ABSURD_SLACK_MS

THUMBS = ("thumbs_up", "thumbs_down")


def half_up(x: np.ndarray | pd.Series, digits: int = 6) -> np.ndarray:
    """Spark's ``round`` (HALF_UP on the decimal value); the tiny slack absorbs binary error at exact halves."""
    scaled = np.abs(np.asarray(x, dtype=np.float64)) * 10.0**digits
    return np.asarray(np.sign(x) * np.floor(scaled + 0.5 + 1e-7) / 10.0**digits)


def _read(path: Path | str, columns: list[str]) -> pd.DataFrame:
    return pq.read_table(path, columns=columns).to_pandas(types_mapper=pd.ArrowDtype)


def _flat(lists: pd.Series) -> tuple[pd.Series, np.ndarray, np.ndarray]:
    """The elements of a list column, the row of each, and each one's 0-based position in its list."""
    lengths = lists.list.len().fillna(0).to_numpy(dtype=np.int64)
    rows = np.repeat(np.arange(len(lists)), lengths)
    starts = np.repeat(np.cumsum(lengths) - lengths, lengths)
    return lists.list.flatten(), rows, np.arange(len(rows)) - starts


def valid_responses(responses: pd.DataFrame, track_ids: pd.Index, max_request_chars: int) -> pd.DataFrame:
    """The responses that pass validate_responses: required fields, request, playlist, known tracks, first id."""
    ok = responses[list(REQUIRED["responses"])].notna().all(axis=1)
    ok &= (responses["request"].str.strip(" ") != "") & (responses["request"].str.len() <= max_request_chars)
    ok &= responses["track_ids"].list.len() > 0
    for column in ("track_ids", "candidates"):
        values, rows, _ = _flat(responses[column])
        unknown = np.bincount(rows[~values.isin(track_ids).to_numpy(bool)], minlength=len(responses))
        ok &= unknown == 0
    kept = responses[ok.fillna(False).to_numpy(bool)].sort_values("ts", na_position="last", kind="stable")
    return kept.drop_duplicates("response_id").sort_index()


def _codes(values: pd.Series, universe: pd.Series | pd.Index) -> np.ndarray:
    """The position of each value in ``universe`` (unique), -1 when it is absent or null."""
    found = pc.index_in(pa.array(values), value_set=pa.array(universe))
    return np.asarray(found.fill_null(-1).to_numpy(), dtype=np.int64)


def valid_interactions(
    interactions: pd.DataFrame, responses: pd.DataFrame, catalog: pd.DataFrame
) -> pd.DataFrame:
    """The interactions that pass validate_interactions, ``track_ms`` filled from the catalog.

    Adds ``_rid`` and ``_tid``: the row of the response in ``responses`` and of the track in ``catalog``
    (-1 for no track), so that the rewards group by integers.
    """
    df = interactions
    ok = df[list(REQUIRED["interactions"])].notna().all(axis=1) & df["event"].isin(EVENTS)
    ok &= ~(df["track_id"].isna() & df["event"].isin(TRACK_EVENTS))
    rid, tid = _codes(df["response_id"], responses["response_id"]), _codes(df["track_id"], catalog.index)
    ts = df["ts"].to_numpy("datetime64[us]", na_value=np.datetime64("NaT"))
    shown = responses["ts"].to_numpy("datetime64[us]", na_value=np.datetime64("NaT"))[rid]
    ok &= (rid >= 0) & ~(ts < shown) & (df["track_id"].isna() | (tid >= 0))
    duration = catalog["duration_ms"].to_numpy(np.float64, na_value=np.nan)[tid]
    track_ms = df["track_ms"].to_numpy(np.float64, na_value=np.nan)
    track_ms = np.where(np.isnan(track_ms) & (tid >= 0), duration, track_ms)
    ms = df["ms_played"].to_numpy(np.float64, na_value=np.nan)
    ok &= ~((ms < 0) | (ms > 2 * track_ms + ABSURD_SLACK_MS))
    kept = df.assign(track_ms=track_ms, _rid=rid, _tid=tid)[ok.fillna(False).to_numpy(bool)]
    return kept.drop_duplicates(["_rid", "_tid", "position", "event", "ts"])


@dataclass
class Prepared:
    """What the pandas version produces: the same quantities as the Spark job, as pandas frames."""

    responses: pd.DataFrame  # valid responses, plus ``reward``
    interactions: pd.DataFrame  # valid interactions
    propensity: pd.DataFrame  # position, shown, examined, propensity
    pairs: pd.DataFrame  # chosen_id, rejected_id, reward_chosen, reward_rejected, margin


def _weights(df: pd.DataFrame, weights: dict[str, float], early_skip: float) -> np.ndarray:
    ms, total = df["ms_played"].to_numpy(float, na_value=np.nan), df["track_ms"].to_numpy(float)
    with np.errstate(divide="ignore", invalid="ignore"):
        late = (total > 0) & (ms / total >= early_skip)
    skip = np.where(late, weights["skip_late"], weights["skip_early"])
    fixed = df["event"].map({e: weights.get(e, 0.0) for e in EVENTS}).to_numpy(float, na_value=0.0)
    return np.where((df["event"] == "skip").to_numpy(bool), skip, fixed)


def _propensity(shown: np.ndarray, examined: np.ndarray, rw: RewardSettings) -> np.ndarray:
    """θ per position from shown / examined counts, as rewards.position_propensity."""
    rate = np.where(shown >= rw.min_position_support, examined / np.maximum(shown, 1), np.nan)
    supported = rate[~np.isnan(rate)]
    base = supported[0] if len(supported) else np.nan
    relative = rate / base if base > 0 else rate * np.nan  # no examined first position: θ = 1
    running = np.fmin.accumulate(relative)  # fmin skips NaN: unsupported positions reuse the last
    return half_up(np.maximum(np.nan_to_num(np.minimum(running, 1.0), nan=1.0), 1.0 / rw.max_ipw))


def rewards(
    responses: pd.DataFrame, interactions: pd.DataFrame, catalog_ids: pd.Index, settings: PrepSettings
) -> tuple[np.ndarray, pd.DataFrame]:
    """Response rewards (in the order of ``responses``) and position propensities, as data_prep.rewards."""
    rw, n_tracks = settings.rewards, len(catalog_ids)
    weights = rw.resolved_weights()
    tracks = interactions[interactions["event"].isin(TRACK_EVENTS).to_numpy(bool)]
    key = tracks["_rid"].to_numpy() * n_tracks + tracks["_tid"].to_numpy()
    summed = pd.Series(_weights(tracks, weights, rw.early_skip)).groupby(key).sum()
    track_reward = pd.Series(half_up(summed.clip(-rw.track_clip, rw.track_clip)), index=summed.index)

    values, rows, position = _flat(responses["track_ids"])
    shown_key = rows * n_tracks + _codes(values, catalog_ids)
    first = ~pd.Series(shown_key).duplicated().to_numpy()  # each track at its first position
    rows, position, reward = rows[first], position[first], track_reward.reindex(shown_key[first]).to_numpy()
    seen = ~np.isnan(reward)
    per = pd.DataFrame({"shown": np.bincount(position), "examined": np.bincount(position, weights=seen)})
    per = per[per["shown"] > 0].rename_axis("position").reset_index()
    per["examined"] = per["examined"].astype(np.int64)
    theta = np.ones(position.max() + 1)
    if rw.position_bias == "ipw":
        per["propensity"] = _propensity(per["shown"].to_numpy(), per["examined"].to_numpy(), rw)
        theta[per["position"].to_numpy()] = per["propensity"].to_numpy()
    value = half_up(np.nan_to_num(reward, nan=0.0) * (1.0 / theta[position]))

    n = responses["track_ids"].list.len().to_numpy(np.int64)
    mean = np.bincount(rows, weights=value, minlength=len(responses)) / np.maximum(n, 1)
    implicit = np.clip(mean, -rw.track_clip, rw.track_clip)
    thumbs = interactions[interactions["event"].isin(THUMBS).to_numpy(bool)]
    thumbs = thumbs.assign(
        _w=np.where(thumbs["event"] == "thumbs_up", weights["thumbs_up"], weights["thumbs_down"])
    )
    latest = thumbs.sort_values(["_rid", "ts", "_w"], na_position="first").groupby("_rid")["_w"].last()
    thumb = latest.reindex(np.arange(len(responses))).to_numpy()
    return half_up(np.where(np.isnan(thumb), implicit, thumb)), per


def response_pairs(scored: pd.DataFrame, settings: PrepSettings) -> pd.DataFrame:
    """The ``response`` strategy, then the per-prompt and per-user caps of finalize_pairs."""
    caps = settings.pairs
    df = scored.assign(
        _cands=pc.binary_join(pa.array(scored["candidates"]), ","),
        _playlist=pc.binary_join(pa.array(scored["track_ids"]), ","),
    )
    df["_prompt"] = df.groupby(["session_id", "turn", "request"], observed=True, sort=False).ngroup()
    df["_match"] = df.groupby(["_prompt", "user_id", "_cands"], observed=True, sort=False).ngroup()
    df = df[["_match", "_prompt", "user_id", "response_id", "reward", "_playlist"]]
    both = df.merge(df.drop(columns=["_prompt", "user_id"]), on="_match", suffixes=("_a", "_b"))
    diff = (both["reward_a"] - both["reward_b"]).to_numpy()
    margin = half_up(diff)
    keep = (margin >= caps.min_margin) & (margin > 0)  # rounded first, as Spark compares it
    keep &= (both["_playlist_a"] != both["_playlist_b"]).to_numpy(bool)
    pairs = both[keep].assign(margin=margin[keep])
    pairs = pairs.sort_values(["margin", "response_id_a", "response_id_b"], ascending=[False, True, True])
    # Exact duplicates (same prompt, same two playlists) keep the widest margin, then the caps apply.
    pairs = pairs.drop_duplicates(["_prompt", "_playlist_a", "_playlist_b"])
    pairs = pairs.groupby("_prompt").head(caps.max_per_prompt)
    pairs = pairs.groupby("user_id").head(caps.max_per_user)
    names = {"response_id_a": "chosen_id", "response_id_b": "rejected_id", "reward_a": "reward_chosen"}
    names["reward_b"] = "reward_rejected"
    return pairs.rename(columns=names)[[*names.values(), "margin"]].reset_index(drop=True)


def prepare(
    responses: str | Path, interactions: str | Path, catalog: str | Path, settings: PrepSettings | None = None
) -> Prepared:
    """Validate, score and pair the logs at the three paths (Parquet files or directories)."""
    cfg = settings or PrepSettings()
    cat = _read(catalog, ["track_id", "title", "artist", "duration_ms"])
    cat = cat[cat[list(REQUIRED["catalog"])].notna().all(axis=1).to_numpy(bool)].drop_duplicates("track_id")
    cat = cat.set_index("track_id")
    columns = ["response_id", "session_id", "user_id", "turn", "ts", "request", "candidates", "track_ids"]
    resp = valid_responses(_read(responses, columns), cat.index, cfg.max_request_chars).reset_index(drop=True)
    columns = ["response_id", "track_id", "position", "event", "ms_played", "track_ms", "ts"]
    inter = valid_interactions(_read(interactions, columns), resp, cat)
    reward, propensity = rewards(resp, inter, cat.index, cfg)
    resp = resp.assign(reward=reward)
    return Prepared(resp, inter.drop(columns=["_rid", "_tid"]), propensity, response_pairs(resp, cfg))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    for name in ("responses", "interactions", "catalog"):
        parser.add_argument(f"--{name}", required=True)
    args = parser.parse_args()
    before, start = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
    out = prepare(args.responses, args.interactions, args.catalog)
    seconds, after = time.perf_counter() - start, resource.getrusage(resource.RUSAGE_SELF)
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    rss = after.ru_maxrss * 1024  # Linux reports KiB
    counts = {"responses": len(out.responses), "interactions": len(out.interactions), "pairs": len(out.pairs)}
    print(json.dumps({"s": seconds, "cpu": cpu, "rss": rss, **counts}))


if __name__ == "__main__":
    main()

"""The registered model on real requests: MusicRecoNER's Reddit queries, each answered from the bundled catalog.

Loads ``models:/NAME@ALIAS`` (or any model URI) as a pyfunc in this fresh process, as a user would, sends every
query of ``../shared/data/requests/musicreco_ner/dataset{1,2,3}_queries.csv`` (the ``preprocessed`` text) with no
candidates (the pyfunc retrieves them), and counts the answers that are a non-empty playlist of which every
line is grounded in the catalog. Last line: ``reddit_fully_grounded=<share>``.

    MLFLOW_TRACKING_URI=sqlite:///mlruns/mlflow.db .venv/bin/python bench/reddit_requests.py \\
        --model models:/playlist-generator@candidate [--limit 100]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import mlflow
import pandas as pd

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "requests" / "musicreco_ner"


def queries(data: Path, limit: int | None) -> pd.DataFrame:
    """Every query of the three files, with the file it came from."""
    frames = []
    for i in (1, 2, 3):
        frame = pd.read_csv(data / f"dataset{i}_queries.csv")
        frames.append(pd.DataFrame({"file": f"dataset{i}", "request": frame["preprocessed"].astype(str)}))
    out = pd.concat(frames, ignore_index=True)
    return out if limit is None else out.head(limit)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="models:/playlist-generator@candidate")
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--batch", type=int, default=64)
    args = parser.parse_args(argv)
    if not args.data.exists():
        print(f"{args.data}: not found (../shared/data is needed)", file=sys.stderr)
        return 2
    asked = queries(args.data, args.limit)
    model = mlflow.pyfunc.load_model(args.model)
    answers = []
    for start in range(0, len(asked), args.batch):
        chunk = asked.iloc[start : start + args.batch]
        batch = pd.DataFrame({"request": chunk["request"], "history": [[] for _ in range(len(chunk))],
                              "candidates": [None] * len(chunk)})  # fmt: skip
        answers.append(model.predict(batch))
    out = pd.concat(answers, ignore_index=True)
    asked["n_tracks"] = out["track_ids"].map(len)
    asked["fully_grounded"] = [bool(len(g)) and all(g) for g in out["grounded"]]
    asked["distinct"] = [len(set(t)) == len(t) for t in out["track_ids"]]
    for name, group in asked.groupby("file"):
        print(f"{name}: {len(group)} requests, fully grounded {group['fully_grounded'].mean():.3f}, "
              f"no repeated track {group['distinct'].mean():.3f}, mean length {group['n_tracks'].mean():.1f}")  # fmt: skip
    print(
        f"example: {asked['request'].iloc[0]!r} -> {list(zip(out['artists'].iloc[0], out['titles'].iloc[0], strict=True))[:5]}"
    )
    print(f"reddit_fully_grounded={asked['fully_grounded'].mean():.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

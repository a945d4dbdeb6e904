"""`python -m encore.pair_labels RECIPE`: the label quality of a recipe's prepared pairs (evaluation.pair_labels).

python -m encore.pair_labels recipes/smollm2-135m/gpu/400-users.yaml      # <out>/raw, train pairs
python -m encore.pair_labels RECIPE --set name=… --raw <out>/raw/round-sft  # an on-policy round
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from encore.config import load_recipe
from evaluation.pair_labels import agreement, logged_intents


def main(argv: Sequence[str] | None = None) -> pd.DataFrame:
    parser = argparse.ArgumentParser(prog="python -m encore.pair_labels", description=__doc__.split("\n")[0])
    parser.add_argument("recipe", type=Path)
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--raw", type=Path, help="the simulator logs with intents (default: <out>/raw)")
    parser.add_argument("--split", default="train", choices=["train", "eval"])
    args = parser.parse_args(argv)
    recipe = load_recipe(args.recipe, args.overrides, check_args=False)
    raw, prepared = args.raw or recipe.out / "raw", recipe.out / "prepared"
    prompts = logged_intents(raw, recipe.hash_key)
    if prompts is None:
        parser.error(f"{raw / 'intents.jsonl'} does not exist: label quality needs simulator logs")
    pairs = pd.read_parquet(prepared / "pairs")
    pairs = pairs[pairs["split"] == args.split]
    table = agreement(pairs, prompts, pd.read_parquet(prepared / "validated" / "catalog"))
    print(f"{args.split} pairs of {prepared} against the intents in {raw}:")
    print(table.to_string(float_format=lambda v: f"{v:.2f}"))
    return table


if __name__ == "__main__":
    main()

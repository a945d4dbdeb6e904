"""SFT on mixed-length examples: packed, padding-free batches vs padded batches, through encore's SFT stage.

The variants differ by the recipe option only: `sft.args.packing: true` (TRL's best-fit-decreasing
packing, which implies padding-free batches) vs `packing: false, padding_free: false` (each batch
padded to its longest example). The data are the prepared SFT rows with a random number of the
candidate lines cut from each prompt (seeded), so lengths spread from a short request to the full
prompt. One epoch each, same examples, so the real (non-pad) tokens are the same and tokens/s is
tokens / the trainer's `train_runtime`. Fresh process per run, A/B interleaved, medians.
Last line: `train_packing_tokens_per_s=<packed tokens/s / padded tokens/s>`.

    .venv/bin/python bench/train_packing.py [--model builtin:tiny] [--repeats 3]
"""

from __future__ import annotations

import argparse
import random
import shutil
from pathlib import Path
from typing import Any

import pandas as pd
from train_common import child_result, conditions, interleaved, measure, median, prepared, run_stage

VARIANTS = ["packed", "padded"]
BATCH = 8
MAX_LENGTH = 1024


def mixed_length_sft(out: Path) -> Path:
    """`out/prepared/sft`: the prepared SFT rows with 0–all candidate lines kept per prompt (seed 0)."""
    source = prepared()
    target = out / "prepared"
    if (target / "sft" / "part-0.parquet").exists():
        return target
    shutil.copytree(source, target, dirs_exist_ok=True, ignore=shutil.ignore_patterns("sft"))
    rows = pd.read_parquet(source / "sft")
    rng = random.Random(0)

    def shorten(messages: Any) -> list[dict[str, str]]:
        messages = [dict(m) for m in messages]
        user = next(m for m in messages if m["role"] == "user")
        head, sep, candidates = user["content"].partition("Candidates:\n")
        lines = candidates.splitlines()
        user["content"] = head + sep + "\n".join(lines[: rng.randint(0, len(lines))])
        return messages

    rows["messages"] = rows["messages"].map(shorten)
    (target / "sft").mkdir(parents=True, exist_ok=True)
    rows.to_parquet(target / "sft" / "part-0.parquet")
    return target


def run(variant: str, model: str, workdir: Path) -> dict[str, Any]:
    from transformers import AutoTokenizer

    from encore.models import resolve_model

    packing = variant == "packed"
    overrides = [
        f"base_model={model}",
        "sft.args.num_train_epochs=1",
        f"sft.args.per_device_train_batch_size={BATCH}",
        f"sft.args.max_length={MAX_LENGTH}",
        f"sft.args.packing={str(packing).lower()}",
        f"sft.args.padding_free={str(packing).lower()}",
        "sft.args.max_steps=-1",
        "sft.args.logging_steps=100",
    ]
    work = Path(workdir)
    out = work / f"run-{variant}"
    (out / "out").mkdir(parents=True)
    (out / "out" / "prepared").symlink_to(work / "prepared")
    seconds, cpu, metrics = run_stage("sft", out, overrides)
    tokenizer = AutoTokenizer.from_pretrained(resolve_model(model))
    rows = pd.read_parquet(work / "prepared" / "sft")
    train = rows[rows["split"] == "train"]
    tokens = sum(
        min(len(tokenizer.apply_chat_template(list(m), tokenize=True, return_dict=False)), MAX_LENGTH)
        for m in train["messages"]
    )
    return {
        "train_runtime": metrics["train/train_runtime"],
        "stage_seconds": seconds,
        "stage_cpu_seconds": cpu,
        "tokens": tokens,
        "rows": metrics["train/rows"],
        "examples": metrics["train/examples"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="builtin:tiny")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--workdir", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child_result(run(args.child, args.model, Path(args.workdir)))
        return

    import tempfile

    workdir = Path(tempfile.mkdtemp(prefix="encore-bench-packing-"))
    mixed_length_sft(workdir)
    lengths = pd.read_parquet(workdir / "prepared" / "sft")["messages"].map(
        lambda m: sum(len(x["content"]) for x in m)
    )
    print(conditions())
    print(
        f"example lengths in characters: min {lengths.min()}, median {lengths.median():.0f}, max {lengths.max()}"
    )
    counter = iter(range(10**6))

    def one(variant: str) -> dict[str, Any]:
        sub = workdir / f"r{next(counter)}"
        sub.mkdir()
        (sub / "prepared").symlink_to(workdir / "prepared")
        return measure(__file__, variant, ["--model", args.model, "--workdir", str(sub)])

    results = interleaved(VARIANTS, args.repeats, one)
    rate = {v: median(results[v], "tokens") / median(results[v], "train_runtime") for v in VARIANTS}
    print(conditions())
    print(
        f"model={args.model} one epoch, batch {BATCH}, max_length {MAX_LENGTH}, repeats={args.repeats} "
        "(medians, A/B interleaved)"
    )
    for v in VARIANTS:
        r = results[v][0]
        print(
            f"{v}: {r['examples']:.0f} examples in {r['rows']:.0f} rows, {r['tokens']} tokens, "
            f"median train_runtime {median(results[v], 'train_runtime'):.1f} s, {rate[v]:.0f} tokens/s"
        )
    cpu = {v: median(results[v], "stage_cpu_seconds") for v in VARIANTS}
    print(f"stage CPU seconds (whole SFT stage): packed {cpu['packed']:.1f}, padded {cpu['padded']:.1f}")
    print(f"train_packing_tokens_per_s={rate['packed'] / rate['padded']:.3f}")


if __name__ == "__main__":
    main()

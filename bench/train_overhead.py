"""Framework overhead: encore's SFT and DPO stages vs a plain TRL script, same model, data, args and seed.

The encore variant is the stage's `main(recipe)` (data read, model load, LoRA, TRL trainer, the
adapter-moved / base-untouched checks, adapter saved, MLflow run with params, dataset, metrics and
the adapter as artifacts). The plain variant does the same training with TRL and PEFT directly and
saves the adapter; it logs nothing. Both are timed from reading the data to the saved adapter, after
imports, each in a fresh process, alternating A/B and taking medians (the 2 cores are shared).
Throughput is trained examples per second of that span; the ratio is encore / plain (1.0: no overhead).
Last line: `train_overhead=<min of the SFT and DPO ratios>` (target ≥ 0.97).

    .venv/bin/python bench/train_overhead.py [--steps 16] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

from train_common import (
    RECIPE,
    child_result,
    conditions,
    cpu_seconds,
    interleaved,
    measure,
    median,
    store_overrides,
    workdir_with_data,
)

MODEL = "builtin:tiny"
SEED = 0
LORA = {"r": 8, "alpha": 16, "dropout": 0.0}  # = recipes/smoke/kto.yaml's lora section
BATCH = {"sft": 8, "dpo": 4}


def stage_args(stage: str, steps: int) -> dict[str, Any]:
    """The `args:` block both variants use (encore adds bf16=False, use_cpu=True on a CPU: so does plain)."""
    common = {
        "max_steps": steps,
        "per_device_train_batch_size": BATCH[stage],
        "max_length": 512,
        "logging_steps": 4,
        "save_strategy": "no",
        "gradient_checkpointing": False,
    }
    if stage == "sft":
        return {**common, "learning_rate": 3.0e-3}
    return {**common, "learning_rate": 1.0e-3, "beta": 0.1}


def run_encore(stage: str, steps: int) -> dict[str, Any]:
    from encore import tracking
    from encore.config import load_recipe

    workdir = workdir_with_data()
    overrides = store_overrides(workdir)[1::2]  # the values of its `--set` pairs
    if stage == "dpo":
        overrides.append("sft.enabled=false")  # DPO starts from the base model, as the plain script does
    overrides += [f"{stage}.args.{k}={json.dumps(v)}" for k, v in stage_args(stage, steps).items()]
    recipe = load_recipe(RECIPE, overrides)
    tracking.setup(recipe)  # creates the SQLite store: a one-off, outside the timed span
    if stage == "sft":
        from encore.stages import sft as module
    else:
        from encore.stages import dpo as module  # type: ignore[no-redef]
    start, cpu = time.perf_counter(), cpu_seconds()
    module.main(recipe)
    return {"seconds": time.perf_counter() - start, "cpu_seconds": cpu_seconds() - cpu}


def run_plain(stage: str, steps: int) -> dict[str, Any]:
    """What a user would write with TRL alone (the alignment-handbook / trl/scripts way)."""
    import torch
    from datasets import load_dataset
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM, AutoTokenizer, set_seed
    from trl import DPOConfig, DPOTrainer, SFTConfig, SFTTrainer

    from encore.models import resolve_model

    workdir = workdir_with_data()
    path = resolve_model(MODEL)
    set_seed(SEED)
    start, cpu = time.perf_counter(), cpu_seconds()
    name = "sft" if stage == "sft" else "pairs"
    files = sorted(str(p) for p in (workdir / "out" / "prepared" / name).glob("*.parquet"))
    data = load_dataset("parquet", data_files=files, split="train").filter(lambda r: r["split"] == "train")
    if stage == "sft":
        data = data.map(
            lambda r: {"prompt": r["messages"][:-1], "completion": r["messages"][-1:]},
            remove_columns=data.column_names,
        )
    else:
        data = data.select_columns(["prompt", "chosen", "rejected"])  # already TRL conversational pairs
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32, use_safetensors=True)
    tokenizer = AutoTokenizer.from_pretrained(path)
    peft_config = LoraConfig(
        r=LORA["r"],
        lora_alpha=LORA["alpha"],
        lora_dropout=LORA["dropout"],
        target_modules="all-linear",
        bias="none",
        task_type="CAUSAL_LM",
    )
    out = workdir / "out" / stage
    config: Any
    trainer: Any
    common = {"output_dir": str(out / "checkpoints"), "seed": SEED, "report_to": "none"}
    args = {"bf16": False, "use_cpu": True, **stage_args(stage, steps)}
    if stage == "sft":
        config = SFTConfig(**common, **args)
        trainer = SFTTrainer(
            model=model, args=config, train_dataset=data, processing_class=tokenizer, peft_config=peft_config
        )
    else:
        config = DPOConfig(**common, **args)
        trainer = DPOTrainer(
            model=model, args=config, train_dataset=data, processing_class=tokenizer, peft_config=peft_config
        )
    trainer.train()
    trainer.model.save_pretrained(str(out / "adapter"))
    tokenizer.save_pretrained(str(out / "adapter"))
    return {"seconds": time.perf_counter() - start, "cpu_seconds": cpu_seconds() - cpu}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        framework, stage = args.child.split("-")
        runner = run_encore if framework == "encore" else run_plain
        child_result(runner(stage, args.steps))
        return

    print(conditions())
    ratios = {}
    for stage in ("sft", "dpo"):
        variants = [f"encore-{stage}", f"plain-{stage}"]
        results = interleaved(
            variants, args.repeats, lambda v: measure(__file__, v, ["--steps", str(args.steps)])
        )
        examples = args.steps * BATCH[stage]
        encore_s, plain_s = (median(results[v], "seconds") for v in variants)
        encore_cpu, plain_cpu = (median(results[v], "cpu_seconds") for v in variants)
        ratios[stage] = plain_s / encore_s
        print(
            f"{stage}: {examples} examples; median wall s encore {encore_s:.1f}, plain TRL {plain_s:.1f}; "
            f"throughput encore {examples / encore_s:.2f}/s, plain {examples / plain_s:.2f}/s; "
            f"ratio {ratios[stage]:.3f}; median CPU s encore {encore_cpu:.1f}, plain {plain_cpu:.1f}, "
            f"CPU-time throughput ratio {plain_cpu / encore_cpu:.3f}"
        )
    print(conditions())
    print(f"model={MODEL} steps={args.steps} repeats={args.repeats} (medians, A/B interleaved)")
    print(f"train_overhead_sft={ratios['sft']:.3f}")
    print(f"train_overhead_dpo={ratios['dpo']:.3f}")
    print(f"train_overhead={min(ratios.values()):.3f}")


if __name__ == "__main__":
    main()

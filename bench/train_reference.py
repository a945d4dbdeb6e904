"""DPO's reference: the adapter-disabled policy (encore's way) vs an explicit second copy of the model.

Both variants train the same LoRA adapter with TRL's DPOTrainer on the same pairs, args and seed;
one passes `ref_model=None` (TRL then computes the reference by disabling the adapter), the other
passes a second copy of the base model. Each run is a fresh process, so its peak RSS is its own;
runs alternate A/B and the report takes medians (the 2 cores are shared with other jobs). Step time
is the median wall time of the steps after the first.
Last line: `train_reference_rss=<adapter-disabled peak RSS / second-model peak RSS>`.

    .venv/bin/python bench/train_reference.py [--model builtin:smollm2-135m] [--steps 4] [--repeats 2]
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Any

from train_common import (
    child_result,
    conditions,
    cpu_seconds,
    interleaved,
    measure,
    median,
    workdir_with_data,
)

VARIANTS = ["adapter-disabled", "second-model"]


def run(variant: str, model_name: str, steps: int, max_length: int) -> dict[str, Any]:
    import torch
    from datasets import load_dataset
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM, AutoTokenizer, TrainerCallback, set_seed
    from trl import DPOConfig, DPOTrainer

    from encore.models import resolve_model

    class StepTimes(TrainerCallback):
        def __init__(self) -> None:
            self.times: list[float] = []

        def on_step_begin(self, *args: Any, **kwargs: Any) -> None:
            self.start = time.perf_counter()

        def on_step_end(self, *args: Any, **kwargs: Any) -> None:
            self.times.append(time.perf_counter() - self.start)

    workdir = workdir_with_data()
    path = resolve_model(model_name)
    set_seed(0)
    files = sorted(str(p) for p in (workdir / "out" / "prepared" / "pairs").glob("*.parquet"))
    data = load_dataset("parquet", data_files=files, split="train").filter(lambda r: r["split"] == "train")
    data = data.select_columns(["prompt", "chosen", "rejected"])  # already TRL conversational pairs
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32, use_safetensors=True)
    ref_model = None
    if variant == "second-model":
        ref_model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32, use_safetensors=True)
    tokenizer = AutoTokenizer.from_pretrained(path)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    config = DPOConfig(
        output_dir=str(workdir / "out" / "dpo"),
        seed=0,
        report_to="none",
        bf16=False,
        use_cpu=True,
        max_steps=steps,
        per_device_train_batch_size=2,
        max_length=max_length,
        learning_rate=1e-4,
        beta=0.1,
        logging_steps=1,
        save_strategy="no",
        gradient_checkpointing=False,
    )
    timer = StepTimes()
    trainer = DPOTrainer(
        model=model,
        ref_model=ref_model,
        args=config,
        train_dataset=data,
        processing_class=tokenizer,
        peft_config=LoraConfig(
            r=16, lora_alpha=32, lora_dropout=0.0, target_modules="all-linear", task_type="CAUSAL_LM"
        ),
        callbacks=[timer],
    )
    assert (trainer.ref_model is None) == (variant == "adapter-disabled")
    cpu = cpu_seconds()
    trainer.train()
    return {
        "step_seconds": statistics.median(timer.times[1:] or timer.times),
        "train_cpu_seconds": cpu_seconds() - cpu,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="builtin:smollm2-135m")
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--max-length", type=int, default=1024)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    options = ["--model", args.model, "--steps", str(args.steps), "--max-length", str(args.max_length)]
    if args.child:
        child_result(run(args.child, args.model, args.steps, args.max_length))
        return

    print(conditions())
    results = interleaved(VARIANTS, args.repeats, lambda v: measure(__file__, v, options))
    rss = {v: median(results[v], "peak_rss_mb") for v in VARIANTS}
    step = {v: median(results[v], "step_seconds") for v in VARIANTS}
    print(conditions())
    print(
        f"model={args.model} steps={args.steps} batch=2 pairs max_length={args.max_length} LoRA r=16 all-linear, "
        f"repeats={args.repeats} (medians, A/B interleaved, one process per run)"
    )
    for v in VARIANTS:
        print(f"{v}: peak RSS {rss[v]:.0f} MiB, step {step[v]:.2f} s")
    cpu = {v: median(results[v], "train_cpu_seconds") for v in VARIANTS}
    print(
        f"train CPU seconds: adapter-disabled {cpu['adapter-disabled']:.1f}, second-model {cpu['second-model']:.1f}"
    )
    print(f"train_reference_step_time={step['adapter-disabled'] / step['second-model']:.3f}")
    print(f"train_reference_rss={rss['adapter-disabled'] / rss['second-model']:.3f}")


if __name__ == "__main__":
    main()

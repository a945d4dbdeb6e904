"""fp32 vs bf16 autocast for one training step (forward + backward) on the CPU, side by side.

TRL 1.x turns bf16 autocast on by default; this measures what that costs on a CPU, which is why
encore's stages ask for fp32 when there is no CUDA (`encore.train.run.trl_args`).
Last line: `bf16_vs_fp32_step_time=<x>` (above 1: bf16 is slower).

    .venv/bin/python bench/cpu_precision.py [--model builtin:smollm2-135m] [--batch 4] [--tokens 512]
"""

from __future__ import annotations

import argparse
import time

import torch

from encore.models import load_model


def step_seconds(model: torch.nn.Module, ids: torch.Tensor, bf16: bool, repeats: int) -> float:
    """Median wall time of `repeats` forward+backward passes."""
    times = []
    for _ in range(repeats):
        model.zero_grad(set_to_none=True)
        start = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            loss = model(input_ids=ids, labels=ids).loss
        loss.backward()
        times.append(time.perf_counter() - start)
    return sorted(times)[len(times) // 2]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="builtin:tiny")
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--tokens", type=int, default=512)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    torch.manual_seed(0)
    model, _ = load_model(args.model)
    ids = torch.randint(0, model.config.vocab_size, (args.batch, args.tokens))
    step_seconds(model, ids, bf16=False, repeats=1)  # warm-up
    fp32 = step_seconds(model, ids, bf16=False, repeats=args.repeats)
    bf16 = step_seconds(model, ids, bf16=True, repeats=args.repeats)
    print(f"model={args.model} batch={args.batch} tokens={args.tokens} threads={torch.get_num_threads()}")
    print(f"fp32_step_s={fp32:.2f} bf16_step_s={bf16:.2f}")
    print(f"bf16_vs_fp32_step_time={bf16 / fp32:.2f}")


if __name__ == "__main__":
    main()

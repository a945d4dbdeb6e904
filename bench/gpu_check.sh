#!/usr/bin/env bash
# The SFT and DPO stages on builtin:smollm2-135m in bf16 on one CUDA GPU: tokens/s and MFU.
# A few minutes on an H100; record the figures and the card in docs/benchmarks.md.
#
#   bench/gpu_check.sh [--keep DIR] [--sft-steps 40] [--dpo-steps 30] [--batch 8]
#   ENCORE_PEAK_FLOPS=362e12 bench/gpu_check.sh   # a card the table in bench/gpu_check.py lacks
#
# The work is done by bench/gpu_check.py (the real `encore` CLI, then MLflow's metrics); this
# script checks for a CUDA GPU first and stops with a clear message where there is none.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
python="${PYTHON:-$root/.venv/bin/python}"

if ! command -v nvidia-smi >/dev/null 2>&1 || ! nvidia-smi -L >/dev/null 2>&1; then
  echo "gpu_check: no NVIDIA GPU here (nvidia-smi is missing or finds none); run it on a CUDA machine" >&2
  exit 1
fi
if ! "$python" -c 'import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)'; then
  echo "gpu_check: nvidia-smi sees a GPU but this torch has no CUDA ($("$python" -c 'import torch; print(torch.__version__)')); install a CUDA build of torch" >&2
  exit 1
fi
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
cd "$root"
exec "$python" bench/gpu_check.py "$@"

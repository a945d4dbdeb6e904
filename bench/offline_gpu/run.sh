#!/usr/bin/env bash
# On the CUDA machine, second call (README.md): join the GGUF, then `encore train sft`, `encore train dpo`
# and `encore eval` of RECIPE on its carried prep outputs, then each DPO VARIANT on the same SFT adapter.
#
#   bench/offline_gpu/run.sh RECIPE [NAME="--set k=v --set k=v" ...]
#
# With PARALLEL=1: SFT, then all the variants at once (common.sh's parallel_variants; `NAME=` is the
# recipe as it is), stopped at $DEADLINE seconds. Otherwise a variant starts only while less than
# $VARIANTS_BEFORE seconds (default 400) have passed (one takes ~4 min on an H100), and what an
# earlier call on the same machine finished is not run again. Everything
# comes back under $OUT: log.txt, results.tgz (MLflow store, eval reports, run records) and the
# adapters (sft and dpo ones, in 15 MB pieces of adapters.tgz.*; at most 60 MB).
set -uo pipefail
recipe="$1"; shift
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
name="$(python3 -c "from encore.config import load_recipe; print(load_recipe('$recipe').name)")" || exit 5
if [ -n "${PARALLEL:-}" ]; then  # SFT, then every VARIANT at once (`NAME=` for the recipe as it is)
  [ -f "outputs/$name/sft/adapter/adapter_model.safetensors" ] || encore train sft "$recipe" || exit 6
  parallel_variants "$recipe" "$name" "$@"
  echo "== end at $(elapsed)s" | tee -a "$out/log.txt"
  exit
fi
# A second call on the same (still warm) machine skips what an earlier call finished.
if [ -f "outputs/$name/eval/metrics.json" ]; then
  echo "== $name: done by an earlier call" | tee -a "$out/log.txt"
else
  encore train sft "$recipe"
  encore train dpo "$recipe"
  encore eval "$recipe"
  save
fi
variants "$recipe" "$name" "$@"
echo "== end at $(elapsed)s" | tee -a "$out/log.txt"

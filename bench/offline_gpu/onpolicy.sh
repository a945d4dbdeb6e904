#!/usr/bin/env bash
# On the CUDA machine, after setup.sh (README.md, "An on-policy round"): a feedback round on the SFT
# model, then DPO on the pairs it gives, in two calls with a prep here between them.
#
#   bench/offline_gpu/onpolicy.sh collect RECIPE [COLLECT OPTION ...]
#       SFT of RECIPE on its carried prep outputs (unless this machine trained it already), then
#       `encore collect RECIPE --model sft [OPTION ...]` on the carried simulated logs
#       (outputs/NAME/raw). results.tgz brings back outputs/NAME/raw/round-sft, adapters.tgz.* the SFT adapter.
#   bench/offline_gpu/onpolicy.sh train RECIPE NEWNAME [--set k=v ...] [VNAME="--set k=v ..." ...]
#       DPO of RECIPE (or `--set preference=kto|orpo|simpo|rlhf`) as NEWNAME on the carried
#       outputs/NEWNAME/prepared (the prep of the round, made here) and outputs/NEWNAME/sft (the SFT
#       adapter that answered), then eval of SFT against it; then
#       each variant as run.sh runs them (NEWNAME-VNAME, the --set options before it not applied).
#   bench/offline_gpu/onpolicy.sh variants RECIPE NEWNAME VNAME="--set k=v ..." ...
#       only the variants, all at once on the one GPU (a 135M model leaves it mostly idle), each as
#       NEWNAME-VNAME on the carried outputs/NEWNAME/{prepared,sft}; stopped at $DEADLINE seconds.
set -uo pipefail
mode="$1"; recipe="$2"; shift 2
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
case "$mode" in
  collect)
    name="$(python3 -c "from encore.config import load_recipe; print(load_recipe('$recipe').name)")" || exit 5
    [ -f "outputs/$name/sft/adapter/adapter_model.safetensors" ] || encore train sft "$recipe"
    encore collect "$recipe" --model sft "$@"
    save
    ;;
  train)
    newname="$1"; shift
    sets=(); while [ "${1:-}" = --set ]; do sets+=("$1" "$2"); shift 2; done
    pref_eval "$recipe" "$newname" "${sets[@]}"
    save
    variants "$recipe" "$newname" "$@"
    ;;
  variants)
    newname="$1"; shift
    parallel_variants "$recipe" "$newname" "$@"
    ;;
  *) echo "onpolicy.sh: collect, train or variants, not $mode"; exit 2 ;;
esac
echo "== end at $(elapsed)s" | tee -a "$out/log.txt"

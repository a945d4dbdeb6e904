#!/usr/bin/env bash
# On the CUDA machine, after setup.sh (README.md, "The flywheel"): SFT of RECIPE on its carried prep
# outputs (unless this machine trained it already), then `encore flywheel RECIPE` on the carried simulated
# logs (outputs/NAME/raw): the rounds, the matched-compute control and their held-out evals.
#
#   bash bench/offline_gpu/flywheel.sh RECIPE [--set k=v ...]
#
# $OUT gets log.txt, results.tgz (the MLflow store, the flywheel's records, eval caches, samples, pairs
# and round logs) and adapters.tgz.* (the SFT, round and control adapters, in 15 MB pieces). The policy
# is registered here afterwards, not there (`register.enabled=false`: the pyfunc's round trip needs the
# full mlflow). A second call on the same warm machine continues: finished rounds are not redone.
set -uo pipefail
recipe="$1"; shift
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
name="$(python3 -c "from encore.config import load_recipe; print(load_recipe('$recipe').name)")" || exit 5
[ -d "outputs/$name/raw" ] && [ -d "outputs/$name/prepared" ] || { echo "flywheel.sh: carry outputs/$name/prepared and outputs/$name/raw"; exit 6; }
[ -f "outputs/$name/sft/adapter/adapter_model.safetensors" ] || encore train sft "$recipe" || exit 7
encore flywheel "$recipe" --set register.enabled=false "$@"
status=$?
save_flywheel "$name"
echo "== end at $(elapsed)s (flywheel exit $status)" | tee -a "$out/log.txt"
exit "$status"

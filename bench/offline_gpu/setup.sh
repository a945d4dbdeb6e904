#!/usr/bin/env bash
# On the CUDA machine, first call (README.md): keep the carried GGUF pieces in /tmp/encore-gpu, install
# the carried wheels into /tmp/encore-gpu/site, and import every module the stages need. A second call
# carrying only the GGUF's second half and sum keeps them too, so a later call's carry has room for
# outputs of 8 MB or more (an SFT adapter trained elsewhere). A call carrying .offline_gpu/whl-flywheel
# installs the flywheel's reward model (LightGBM) the same way.
set -uo pipefail
work=/tmp/encore-gpu
nvidia-smi -L; python3 --version
mkdir -p "$work"
if compgen -G ".offline_gpu/gguf.*" >/dev/null; then cp .offline_gpu/gguf.* "$work/" || exit 2; fi
[ -f "$work/gguf.part1" ] || { echo "setup.sh: carry .offline_gpu/gguf.part1 (with whl/) in the first call"; exit 2; }
if [ -d .offline_gpu/whl ]; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$work/site" \
    .offline_gpu/whl/*.whl || exit 3
fi
if [ -d .offline_gpu/whl-flywheel ]; then  # the flywheel's reward model; the image's SciPy where it has one
  wheels=(); for w in .offline_gpu/whl-flywheel/*.whl; do
    case "$(basename "$w")" in scipy-*) python3 -c 'import scipy' 2>/dev/null && continue ;; esac
    wheels+=("$w")
  done
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$work/site" \
    "${wheels[@]}" || exit 3
fi
PYTHONPATH="$work/site:$PWD/src:$PWD" python3 -c "
import torch, transformers, trl, peft, datasets, mlflow, pandas, pyarrow, accelerate, huggingface_hub
from trl import SFTTrainer, DPOTrainer
import encore.stages.sft, encore.stages.dpo, encore.stages.evaluate
try:
    import encore.flywheel.loop, lightgbm
    print('lightgbm', lightgbm.__version__, '(encore flywheel can run)')
except ImportError as e:
    print('no encore flywheel here yet:', e, '(carry .offline_gpu/whl-flywheel)')
for m in (torch, transformers, trl, peft, datasets, mlflow, pandas, pyarrow, accelerate, huggingface_hub):
    print(m.__name__, m.__version__)
print(torch.cuda.get_device_name())
" || exit 4

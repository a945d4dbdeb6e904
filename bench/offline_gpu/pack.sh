#!/usr/bin/env bash
# Pack what a bare CUDA machine without a package index needs to run encore's stages (see README.md):
# the wheels of wheels.txt for its Python (and of wheels-flywheel.txt, for `encore flywheel`), and the
# SmolLM2 GGUF in two halves, under .offline_gpu/.
#
#   bench/offline_gpu/pack.sh [--python-version 3.12] [--first-bytes 40000000]
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
py_version=3.12
first=40000000  # the first call also carries the wheels: both calls stay under 64 MiB
while [ $# -gt 0 ]; do
  case "$1" in
    --python-version) py_version="$2"; shift 2 ;;
    --first-bytes) first="$2"; shift 2 ;;
    *) echo "pack.sh: unknown option $1" >&2; exit 2 ;;
  esac
done
out="$root/.offline_gpu"
python="$root/.venv/bin/python"
rm -rf "$out" && mkdir -p "$out/whl"
download() {  # download DIR REQUIREMENTS: the wheels of REQUIREMENTS for the device's Python, into DIR
  "$python" -m pip download -q --no-deps --only-binary=:all: --python-version "$py_version" \
    --implementation cp --abi "cp${py_version/./}" --abi abi3 --abi none \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_24_x86_64 --platform manylinux_2_17_x86_64 \
    --platform manylinux2014_x86_64 --platform any -d "$1" -r "$2"
}
download "$out/whl" "$root/bench/offline_gpu/wheels.txt"
# The flywheel's reward model (LightGBM, SciPy): a call of their own, beside the first call's 64 MiB
download "$out/whl-flywheel" "$root/bench/offline_gpu/wheels-flywheel.txt"
gguf="$("$python" -c 'from encore.models.smollm2 import gguf_path; print(gguf_path())')"
head -c "$first" "$gguf" > "$out/gguf.part1"
tail -c +"$((first + 1))" "$gguf" > "$out/gguf.part2"
sha256sum "$gguf" | cut -d' ' -f1 > "$out/gguf.sha256"
du -sh "$out/whl" "$out/whl-flywheel" "$out"/gguf.part*

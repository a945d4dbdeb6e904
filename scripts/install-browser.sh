#!/usr/bin/env bash
# Install Debian's headless-capable `chromium` for the browser test (tests/integration/test_browser.py).
# Skips with a message, never fails, when chromium is there already, or apt or root is missing: the
# browser test then skips and says why. `scripts/setup.sh` runs this; CI may run it on its own.
set -euo pipefail

if [ -n "${ENCORE_CHROMIUM:-}" ] && [ -x "$ENCORE_CHROMIUM" ]; then
  exit 0
fi
for name in chromium chromium-browser google-chrome; do
  if command -v "$name" >/dev/null 2>&1; then
    exit 0
  fi
done
if ! command -v apt-get >/dev/null 2>&1; then
  echo "encore setup: no chromium and no apt-get; the browser test will skip (install Chromium, or set ENCORE_CHROMIUM=/path/to/chrome)" >&2
  exit 0
fi
if [ "$(id -u)" != 0 ]; then
  echo "encore setup: no chromium; the browser test will skip. To run it: sudo apt-get install -y --no-install-recommends chromium" >&2
  exit 0
fi
echo "encore setup: installing chromium (apt-get) for the browser test"
if ! { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium; } >/dev/null; then
  echo "encore setup: apt-get could not install chromium (offline?); the browser test will skip" >&2
fi

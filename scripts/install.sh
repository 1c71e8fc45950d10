#!/usr/bin/env bash
# Installs what the pack and its tests need. torch is only installed when missing, so an existing ComfyUI
# environment (and its matching torchvision) is never changed; on a bare machine the CPU build is enough.
# The browser test drives Debian's chromium through Playwright (no browser download).
set -euo pipefail
cd "$(dirname "$0")/.."
python -c "import torch" 2>/dev/null || python -m pip install -q torch==2.13.0
python -m pip install -q -r requirements.txt -r requirements-test.txt
if ! command -v chromium >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
        || echo "warning: could not install chromium; the browser test will skip"
fi

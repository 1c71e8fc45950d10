#!/usr/bin/env bash
# Installs what the pack and its tests need, and makes sure there is a ComfyUI to run them in.
# - torch only when missing (with the torchvision that goes with it), so an existing ComfyUI environment keeps its
#   own torch;
# - ComfyUI: COMFYUI_PATH, the ComfyUI holding this pack, or ~/ComfyUI; else one is set up in .comfyui/ (from the
#   source archive COMFYUI_ARCHIVE when set, else a shallow clone of the pinned release) and its requirements are
#   installed, keeping torch. Without archive or network it says so; the main job then falls back to inspection.
# - Debian's chromium for the browser test (Playwright drives it; no browser download).
set -euo pipefail
cd "$(dirname "$0")/.."
python -c "import torch" 2>/dev/null || python -m pip install -q torch==2.14.1 torchvision==0.29.1
python -m pip install -q -r requirements.txt -r requirements-test.txt
python -m nodes.cli setup-comfyui
if ! command -v chromium >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
        || echo "warning: could not install chromium; the browser test will skip"
fi

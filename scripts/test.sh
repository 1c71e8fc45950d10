#!/usr/bin/env bash
# The test command of the README (and of CI): installs what is missing, then runs every test.
# Integration tests need a ComfyUI checkout (COMFYUI_PATH, the ComfyUI holding this pack, or ~/ComfyUI) and skip
# loudly without one.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
python -m pytest -q tests "$@"

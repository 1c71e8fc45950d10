#!/usr/bin/env bash
# Installs what the pack and its tests need. torch is only installed when missing, so an existing ComfyUI
# environment (and its matching torchvision) is never changed; on a bare machine the CPU build is enough.
set -euo pipefail
cd "$(dirname "$0")/.."
python -c "import torch" 2>/dev/null || python -m pip install -q torch==2.13.0
python -m pip install -q -r requirements.txt -r requirements-test.txt

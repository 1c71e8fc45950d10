#!/usr/bin/env bash
# Installs what the pack needs and makes sure there is a ComfyUI to run it in, saying what each step does:
# 1. torch, only when this Python has none (an existing ComfyUI environment keeps its own). Without an NVIDIA GPU on
#    Linux x86_64 it asks PyTorch's CPU index first: PyPI's torch there is the CUDA build (about 7 GB with its CUDA
#    libraries); where that index cannot be reached it installs PyPI's, which runs on the CPU too.
# 2. the pack's requirements (requirements.txt; the test command adds requirements-test.txt);
# 3. ComfyUI: COMFYUI_PATH, the ComfyUI holding this pack, or ~/ComfyUI; else one is set up in .comfyui/ (from the
#    source archive COMFYUI_ARCHIVE when set, else a shallow clone of the pinned release) and its requirements are
#    installed, keeping torch. Without archive or network it says so; the main job then falls back to inspection.
# The browser the UI tests drive is installed by scripts/test.sh, not here.
set -euo pipefail
cd "$(dirname "$0")/.."
TORCH=(torch==2.14.1 torchvision==0.29.1)
CPU_INDEX=https://download.pytorch.org/whl/cpu

if python -c "import torch" 2>/dev/null; then
    echo "[1/3] torch $(python -c 'import torch; print(torch.__version__)') is installed: keeping it"
elif [ "$(uname -s)-$(uname -m)" = Linux-x86_64 ] && ! command -v nvidia-smi >/dev/null 2>&1; then
    echo "[1/3] installing torch (no NVIDIA GPU: the CPU build, from $CPU_INDEX; a few minutes)"
    python -m pip install -q --index-url "$CPU_INDEX" "${TORCH[@]}" 2>/dev/null || {
        echo "      $CPU_INDEX is out of reach: installing PyPI's torch instead (the CUDA build; it runs on the CPU)"
        python -m pip install -q "${TORCH[@]}"
    }
else
    echo "[1/3] installing torch from PyPI (a few minutes)"
    python -m pip install -q "${TORCH[@]}"
fi
echo "[2/3] installing the pack's requirements (requirements.txt)"
python -m pip install -q -r requirements.txt
echo "[3/3] finding ComfyUI, or setting one up"
python -m nodes.cli setup-comfyui

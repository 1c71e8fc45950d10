#!/usr/bin/env bash
# Stages what the GPU benchmarks of the node path need on the lent device machine, which has Python and a CUDA
# torch but no ComfyUI and no network: a copy of ComfyUI, the packages its model-management side imports (as
# unpacked wheels for the device's Python), and the golden outputs the GPU tests read.
# Everything lands in .device_bundle/ (ignored by git, under the device tool's 64 MiB carry limit).
# Then, with the device tool: carry [".device_bundle"], command `bash bench/run_on_device.sh`.
#
# Usage: bash scripts/stage_device_bundle.sh [PYTHON_VERSION (3.12)] [TORCHVISION_VERSION (0.26.0, matches torch 2.11)]
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${1:-3.12}
TORCHVISION=${2:-0.26.0}
COMFY=${COMFYUI_PATH:-$HOME/ComfyUI}
SHARED=${LONGCAT_SHARED:-../shared}
OUT=.device_bundle
[ -f "$COMFY/comfy/model_management.py" ] || { echo "no ComfyUI at $COMFY (set COMFYUI_PATH)"; exit 1; }
[ -d "$SHARED/golden" ] || { echo "no golden outputs at $SHARED/golden (set LONGCAT_SHARED)"; exit 1; }
rm -rf "$OUT" && mkdir -p "$OUT/shared"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# What the pack's nodes and ComfyUI's model management import besides torch (which the device has, with filelock,
# jinja2, sympy and the like). torchvision would pull a whole torch, so it comes without its dependencies.
PLATFORMS=""
for p in manylinux_2_28 manylinux_2_27 manylinux_2_17 manylinux2014 manylinux_2_12 manylinux2010 manylinux_2_5 \
         manylinux1; do PLATFORMS+=" --platform ${p}_x86_64"; done
download() { python -m pip download -q --only-binary=:all: --python-version "$PY" --implementation cp $PLATFORMS \
                 -d "$work/wheels" "$@"; }
download numpy pillow psutil safetensors einops tqdm pyyaml
download --no-deps "torchvision==$TORCHVISION"
mkdir "$work/site"
for wheel in "$work"/wheels/*.whl; do
    python -m zipfile -e "$wheel" "$work/site"
done
find "$work/site" -depth -type d \( -name tests -o -name __pycache__ \) -exec rm -rf {} +
tar -C "$work/site" -cf - . | xz -9 -T0 > "$OUT/site.tar.xz"

tar -C "$COMFY" --exclude=.git --exclude=./tests --exclude=./tests-unit --exclude=./output --exclude=./input \
    --exclude=./temp --exclude=./user --exclude=__pycache__ -cf - . | xz -9 -T0 > "$OUT/comfyui.tar.xz"
mkdir "$OUT/shared/golden"  # the GPU tests read the tiny DiT and the two LoRAs, not the cases
cp "$SHARED"/golden/{tiny_dit.safetensors,tiny_dit_config.json,lora_distill.safetensors,lora_refine.safetensors} \
    "$OUT/shared/golden/"
du -sh "$OUT"/* | sed 's/^/staged: /'
size=$(du -sm "$OUT" | cut -f1)
[ "$size" -le 60 ] || { echo "the bundle is ${size} MiB, over what the device tool carries beside the repo"; exit 1; }

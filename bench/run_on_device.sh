#!/usr/bin/env bash
# Runs on the lent GPU machine, in the repo root, with .device_bundle/ carried (see scripts/stage_device_bundle.sh):
# unpacks ComfyUI and the packages beside the device's own torch, then runs the GPU tests and the node-path
# benchmark. Logs go to $OUT (the device tool brings them back) and to stdout.
#
# Usage: [NODE_PATH_ARGS="--depth 24"] bash bench/run_on_device.sh [more scripts in bench/ to run after the node path]
# Logs are written as they come, so a run cut off by the device's 10-minute limit still brings back what it got.
set -uo pipefail
cd "$(dirname "$0")/.."
BUNDLE=$PWD/.device_bundle
LOGS=${OUT:-$PWD/bench/out}
STAGE=$(mktemp -d)
trap 'rm -rf "$STAGE"' EXIT
mkdir -p "$LOGS" "$STAGE/site" "$STAGE/ComfyUI"
xz -dc "$BUNDLE/site.tar.xz" | tar -C "$STAGE/site" -xf -
xz -dc "$BUNDLE/comfyui.tar.xz" | tar -C "$STAGE/ComfyUI" -xf -
export PYTHONUNBUFFERED=1 PYTHONPATH=$STAGE/site COMFYUI_PATH=$STAGE/ComfyUI LONGCAT_SHARED=$BUNDLE/shared
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>&1 | tee "$LOGS/device.txt"
python -c "import torch, triton; print('torch', torch.__version__, 'triton', triton.__version__)" 2>&1 \
    | tee -a "$LOGS/device.txt"
python -m pytest -q -rs tests/test_gpu_merge.py 2>&1 | tee "$LOGS/gpu_tests.log"
python bench/bench_lora_node_path.py --step --stock ${NODE_PATH_ARGS:-} 2>&1 | grep --line-buffered -v "^WARNING" | tee "$LOGS/node_path.log"
for script in "$@"; do
    python "bench/$script" 2>&1 | tee "$LOGS/${script%.py}.log"
done

#!/usr/bin/env bash
# The device check, on the lent GPU machine, in the repo root, with the parts of .device_bundle/ carried (see
# scripts/stage_device_bundle.sh):
#   bash bench/run_on_device.sh receive   says which parts have arrived (carry one part per call)
#   bash bench/run_on_device.sh [scripts in bench/ to run at the end]
# unpacks ComfyUI and its packages beside the device's own torch, then runs the GPU tests, every shipped workflow
# on the demo set through a real ComfyUI server on the GPU (DynamicVRAM on, as ComfyUI 0.33 sets it on NVIDIA) and
# the node-path benchmark. Logs go to $OUT (the device tool brings them back) and to stdout, line by line, so a run
# cut off by the device's 10-minute limit still brings back what it got.
# NODE_PATH_ARGS="--depth 24" halves the benchmark's model (its ratios are per weight).
set -uo pipefail
cd "$(dirname "$0")/.."
BUNDLE=$PWD/.device_bundle
LOGS=${OUT:-$PWD/bench/out}
mkdir -p "$LOGS"
missing=$(cd "$BUNDLE" && for p in $(cat parts.txt); do [ -f "$p" ] || echo "$p"; done)
if [ "${1:-}" = receive ]; then
    echo "arrived: $(cd "$BUNDLE" && ls bundle.tar.xz.part-* | tr '\n' ' ')"
    echo "missing: ${missing:-none}"
    exit 0
fi
[ -z "$missing" ] || { echo "parts missing: $missing (carry them first, one per call)"; exit 1; }
(cd "$BUNDLE" && sha256sum -c --quiet sha256.txt) || { echo "a part is damaged: carry it again"; exit 1; }
STAGE=$(mktemp -d)
trap 'rm -rf "$STAGE"' EXIT
(cd "$BUNDLE" && cat $(cat parts.txt)) | xz -dc | tar -C "$STAGE" -xf -
export PYTHONUNBUFFERED=1 PYTHONPATH=$STAGE/site COMFYUI_PATH=$STAGE/ComfyUI
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>&1 | tee "$LOGS/device.txt"
python -c "import torch, triton; print('torch', torch.__version__, 'triton', triton.__version__)" 2>&1 \
    | tee -a "$LOGS/device.txt"
python -m pytest -q -rs -m gpu tests 2>&1 | tee "$LOGS/gpu_tests.log"
python bench/device_workflows.py 2>&1 | tee "$LOGS/workflows.log"
python bench/bench_lora_node_path.py --step --stock ${NODE_PATH_ARGS:-} 2>&1 | grep --line-buffered -v "^WARNING" \
    | tee "$LOGS/node_path.log"
for script in "$@"; do
    python "bench/$script" 2>&1 | tee "$LOGS/${script%.py}.log"
done

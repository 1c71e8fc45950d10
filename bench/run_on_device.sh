#!/usr/bin/env bash
# The device check, on the lent GPU machine, in the repo root, with .device_bundle/ carried (see
# scripts/stage_device_bundle.sh; normally one call: carry [".device_bundle"], timeout_s 600):
#   bash bench/run_on_device.sh [scripts in bench/ to run at the end]
#   bash bench/run_on_device.sh receive   (only for a bundle in several parts: says which parts have arrived)
# unpacks ComfyUI and the packages the device lacks beside its own torch, then, each under its share of an
# 8-minute budget (CHECK_S), runs the GPU tests, every shipped workflow on the demo set through a real ComfyUI
# server on the GPU (DynamicVRAM on, as ComfyUI 0.33 sets it on NVIDIA), the node-path benchmark and the
# accelerators benchmark. Logs go to $OUT (the device tool brings them back) and to stdout, line by line, so a run
# cut off still brings back what it got.
# NODE_PATH_ARGS="--depth 24" halves the node-path benchmark's model (its ratios are per weight).
set -uo pipefail
cd "$(dirname "$0")/.."
BUNDLE=$PWD/.device_bundle
LOGS=${OUT:-$PWD/bench/out}
START=$(date +%s)
BUDGET=${CHECK_S:-480}
mkdir -p "$LOGS"
missing=$(cd "$BUNDLE" && for p in $(cat parts.txt); do [ -f "$p" ] || echo "$p"; done)
if [ "${1:-}" = receive ]; then
    echo "arrived: $(cd "$BUNDLE" && ls bundle.tar.xz.part-* | tr '\n' ' ')"
    echo "missing: ${missing:-none}"
    exit 0
fi
[ -z "$missing" ] || { echo "parts missing: $missing (carry them first)"; exit 1; }
(cd "$BUNDLE" && sha256sum -c --quiet sha256.txt) || { echo "a part is damaged: carry it again"; exit 1; }
STAGE=$(mktemp -d)
trap 'rm -rf "$STAGE"' EXIT
(cd "$BUNDLE" && cat $(cat parts.txt)) | xz -dc -T0 | tar -C "$STAGE" -xf -
mkdir -p "$STAGE/no_frontend"  # the check drives the server's API only; the web frontend is not carried
export PYTHONUNBUFFERED=1 PYTHONPATH=$STAGE/site COMFYUI_PATH=$STAGE/ComfyUI \
    COMFYUI_EXTRA_ARGS="--front-end-root $STAGE/no_frontend"
elapsed() { echo $(($(date +%s) - START)); }
# run LOG SHARE_S COMMAND...: at most SHARE_S seconds, and never past the budget
run() {
    local log=$1 share=$2
    shift 2
    local left=$((BUDGET - $(elapsed)))
    [ "$share" -lt "$left" ] || share=$left
    if [ "$share" -le 10 ]; then echo "skipped (budget spent): $*" | tee "$LOGS/$log"; return; fi
    echo "== $* (up to ${share} s, $(elapsed) s in)" | tee "$LOGS/$log"
    timeout "$share" "$@" 2>&1 | grep --line-buffered -v "^WARNING" | tee -a "$LOGS/$log"
    echo "== exit ${PIPESTATUS[0]} at $(elapsed) s" | tee -a "$LOGS/$log"
}
{ nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
  python -c "import torch, triton; print('torch', torch.__version__, 'triton', triton.__version__)"
  echo "unpacked in $(elapsed) s"; } 2>&1 | tee "$LOGS/device.txt"
run gpu_tests.log 90 python -m pytest -q -rs -m gpu tests
run workflows.log 150 python bench/device_workflows.py
run node_path.log 90 python bench/bench_lora_node_path.py --step --stock ${NODE_PATH_ARGS:-}
run accelerators.log 130 python bench/bench_accelerators.py --blocks 4
for script in "$@"; do
    run "${script%.py}.log" 120 python "bench/$script"
done
echo "device check done in $(elapsed) s" | tee -a "$LOGS/device.txt"

#!/usr/bin/env bash
# Stages what the device check needs on the lent GPU machine, which has Python and a CUDA torch but no ComfyUI and
# no network: ComfyUI (0.33, the one this pack finds), every package its server imports besides torch (unpacked
# wheels for the device's Python, with the torchvision and torchaudio of the device's torch, without dependencies;
# not the workflow templates, embedded docs and the "non essential" requirements, which the server runs without),
# as one xz archive cut into parts that each fit the device tool's 64 MiB carry, in .device_bundle/ (git-ignored).
# The parts reach the device one call each: ignored paths carried in earlier calls stay while the machine is warm.
#
# Usage: bash scripts/stage_device_bundle.sh [PYTHON_VERSION (3.12)] [DEVICE_TORCH_VERSION (2.11.0)]
# then, with the device tool, one call per part (quickly one after the other: the machine is released when idle):
#   carry [".device_bundle/parts.txt", ".device_bundle/sha256.txt", ".device_bundle/<part>"],
#   command `bash bench/run_on_device.sh receive`
# and with the last part, command `bash bench/run_on_device.sh` (unpacks, runs the GPU tests, every shipped
# workflow through a real server on the GPU, the node-path benchmark; logs in $OUT).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${1:-3.12}
TORCH=${2:-2.11.0}
PART_MB=${PART_MB:-40}
# TORCHAUDIO=2.11.1 for a torch that has no torchaudio of its own version (2.12 on); ComfyUI imports only its API  # with the working tree (about 20 MiB) under the 64 MiB a call carries
COMFY=$(python -c "from nodes.cli.comfyui_checkout import find_comfyui; print(find_comfyui() or '')")
[ -n "$COMFY" ] || { echo "no ComfyUI found: run scripts/install.sh or set COMFYUI_PATH"; exit 1; }
echo "ComfyUI $(python -c "from nodes.cli.comfyui_checkout import comfyui_version; print(comfyui_version('$COMFY'))") at $COMFY"
minor=$(echo "$TORCH" | cut -d. -f2)
patch=$(echo "$TORCH" | cut -d. -f3)
OUT=.device_bundle
rm -rf "$OUT" && mkdir -p "$OUT"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

PLATFORMS=""
for p in manylinux_2_34 manylinux_2_31 manylinux_2_28 manylinux_2_27 manylinux_2_24 manylinux_2_17 manylinux2014 \
         manylinux_2_12 manylinux2010 manylinux_2_5 manylinux1; do PLATFORMS+=" --platform ${p}_x86_64"; done
download() { python -m pip download -q --only-binary=:all: --python-version "$PY" --implementation cp $PLATFORMS \
                 --platform any -d "$work/wheels" "$@"; }
python -c "from nodes.cli.comfyui_checkout import requirements_without_torch as r; import sys; \
print(r(open(sys.argv[1]).read()))" "$COMFY/requirements.txt" | sed '/^#non essential/,$d' | grep -v "^#" \
    | grep -v -E "^comfyui-(workflow-templates|embedded-docs)" > "$work/requirements.txt"
download -r "$work/requirements.txt"
download --no-deps "torchvision==0.$((minor + 15)).$patch" "torchaudio==${TORCHAUDIO:-$TORCH}"
download pytest hypothesis  # the GPU tests (test modules import hypothesis; playwright is for the browser test)
# What the device's torch brings with it already (and torch itself, which some requirements name).
find "$work/wheels" -regextype posix-extended -regex \
    '.*/(torch|nvidia_[a-z0-9_]+|triton|cuda_[a-z_]+|sympy|networkx|jinja2|markupsafe|filelock|fsspec|mpmath|typing_extensions|setuptools)-[^/]*\.whl' \
    -delete
mkdir -p "$work/bundle/site"
for wheel in "$work"/wheels/*.whl; do
    python -m zipfile -e "$wheel" "$work/bundle/site"
done
find "$work/bundle/site" -depth -type d \( -name tests -o -name __pycache__ \) -exec rm -rf {} +
mkdir "$work/bundle/ComfyUI"
tar -C "$COMFY" --exclude=.git --exclude=./tests --exclude=./tests-unit --exclude=./output --exclude=./input \
    --exclude=./temp --exclude=./user --exclude=__pycache__ -cf - . | tar -C "$work/bundle/ComfyUI" -xf -
tar -C "$work/bundle" -cf - site ComfyUI | xz -9 -T0 | split -b "${PART_MB}M" -d -a 2 - "$OUT/bundle.tar.xz.part-"
(cd "$OUT" && ls bundle.tar.xz.part-* > parts.txt && sha256sum bundle.tar.xz.part-* > sha256.txt)
du -sh "$OUT"/* | sed 's/^/staged: /'
echo "device calls:"
for part in $(cat "$OUT/parts.txt"); do
    echo "  carry [\".device_bundle/parts.txt\", \".device_bundle/sha256.txt\", \".device_bundle/$part\"]"
done
echo "  (the last one with command 'bash bench/run_on_device.sh', the others 'bash bench/run_on_device.sh receive')"

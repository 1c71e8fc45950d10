#!/usr/bin/env bash
# Stages what the device check needs on the lent GPU machine, which has Python, a CUDA torch and many packages
# but no ComfyUI and no network: ComfyUI (0.33, the one this pack finds) and only the packages its server imports
# that the device image lacks (DEVICE_HAS below, from the device tool's KINDS.md), unpacked for the device's Python,
# as one xz archive in .device_bundle/ (git-ignored). Left out: the web frontend (the check drives the server's
# API; run_on_device.sh starts it with an empty --front-end-root), the workflow templates and embedded docs, the
# "non essential" requirements, comfy-kitchen's ROCm build and, unless KITCHEN_CUDA=1, its CUDA extension
# (comfy-kitchen then uses its Triton and eager backends; 21 MB less). About 35 MiB: with the working tree (about
# 23 MiB) it travels in ONE device call (64 MiB a call); KITCHEN_CUDA=1 makes it two parts (PART_MB, 40 by default).
#
# Usage: bash scripts/stage_device_bundle.sh [PYTHON_VERSION (3.12)]
# then one device call (timeout_s 600), carry [".device_bundle"], command `bash bench/run_on_device.sh`
# (with two parts: first carry [".device_bundle/parts.txt", ".device_bundle/sha256.txt", ".device_bundle/<part 0>"]
# with `bash bench/run_on_device.sh receive`, then the last part with `bash bench/run_on_device.sh`).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${1:-3.12}
PART_MB=${PART_MB:-40}
# Packages the device image already holds (KINDS.md, "Python packages already there"), by normalized name.
DEVICE_HAS="aiofiles aiohappyeyeballs aiohttp aiosignal annotated_doc anyio attrs certifi charset_normalizer click
colorama einops filelock frozenlist fsspec h11 hf_xet httpcore httpx huggingface_hub hypothesis idna jinja2
markdown_it_py markupsafe mdurl mpmath multidict networkx numpy packaging pillow pluggy propcache psutil pygments
pytest pyyaml regex requests rich safetensors scipy sentencepiece setuptools shellingham six sympy tokenizers torch
torchaudio torchvision tqdm transformers triton typer typing_extensions urllib3 yarl"
COMFY=$(python -c "from nodes.cli.comfyui_checkout import find_comfyui; print(find_comfyui() or '')")
[ -n "$COMFY" ] || { echo "no ComfyUI found: run scripts/install.sh or set COMFYUI_PATH"; exit 1; }
echo "ComfyUI $(python -c "from nodes.cli.comfyui_checkout import comfyui_version; print(comfyui_version('$COMFY'))") at $COMFY"
OUT=.device_bundle
rm -rf "$OUT" && mkdir -p "$OUT"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

PLATFORMS=""
for p in manylinux_2_34 manylinux_2_31 manylinux_2_28 manylinux_2_27 manylinux_2_24 manylinux_2_17 manylinux2014 \
         manylinux_2_12 manylinux2010 manylinux_2_5 manylinux1; do PLATFORMS+=" --platform ${p}_x86_64"; done
python -c "from nodes.cli.comfyui_checkout import requirements_without_torch as r; import sys; \
print(r(open(sys.argv[1]).read()))" "$COMFY/requirements.txt" | sed '/^#non essential/,$d' | grep -v "^#" \
    | grep -v -E "^comfyui-(frontend-package|workflow-templates|embedded-docs)" > "$work/requirements.txt"
python -m pip download -q --only-binary=:all: --python-version "$PY" --implementation cp $PLATFORMS --platform any \
    -d "$work/wheels" -r "$work/requirements.txt"
for wheel in "$work"/wheels/*.whl; do
    name=$(basename "$wheel" | cut -d- -f1 | tr 'A-Z.-' 'a-z__')
    if echo " $DEVICE_HAS " | tr '\n' ' ' | grep -q " $name " || [[ $name == nvidia_* || $name == cuda_* ]]; then
        rm "$wheel"
    fi
done
echo "packages the device lacks: $(ls "$work/wheels" | cut -d- -f1 | tr '\n' ' ')"
mkdir -p "$work/bundle/site"
for wheel in "$work"/wheels/*.whl; do
    python -m zipfile -e "$wheel" "$work/bundle/site"
done
rm -rf "$work/bundle/site/comfy_kitchen/backends/hip"
[ "${KITCHEN_CUDA:-0}" = 1 ] || rm -f "$work"/bundle/site/comfy_kitchen/backends/cuda/_C.*
find "$work/bundle/site" -depth -type d \( -name tests -o -name __pycache__ \) -exec rm -rf {} +
mkdir "$work/bundle/ComfyUI"
tar -C "$COMFY" --exclude=.git --exclude=./tests --exclude=./tests-unit --exclude=./output --exclude=./input \
    --exclude=./temp --exclude=./user --exclude=__pycache__ -cf - . \
    | tar -C "$work/bundle/ComfyUI" -xf -
tar -C "$work/bundle" -cf - site ComfyUI | xz -9 -T0 | split -b "${PART_MB}M" -d -a 2 - "$OUT/bundle.tar.xz.part-"
(cd "$OUT" && ls bundle.tar.xz.part-* > parts.txt && sha256sum bundle.tar.xz.part-* > sha256.txt)
du -sh "$OUT"/* | sed 's/^/staged: /'
tree=$(git ls-files -z | xargs -0 du -cb | tail -1 | cut -f1)
bundle=$(du -cb "$OUT"/* | tail -1 | cut -f1)
echo "working tree $((tree / 1048576)) MiB + bundle $((bundle / 1048576)) MiB (a call carries 64 MiB)"
if [ "$(wc -l < "$OUT/parts.txt")" = 1 ]; then
    echo "device call: carry [\".device_bundle\"], command 'bash bench/run_on_device.sh', timeout_s 600"
else
    for part in $(cat "$OUT/parts.txt"); do
        echo "  carry [\".device_bundle/parts.txt\", \".device_bundle/sha256.txt\", \".device_bundle/$part\"]"
    done
    echo "  (the last one with command 'bash bench/run_on_device.sh', the others 'bash bench/run_on_device.sh receive')"
fi

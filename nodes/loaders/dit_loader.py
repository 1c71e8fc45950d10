"""Load LongCat DiT: a single `.safetensors` file or a sharded folder (the reference `dit/`, a diffusers
`transformer/`) from ComfyUI's diffusion_models, in any layout the checkpoint reader knows, quantized or not."""
import json
import logging
import math
import os

import comfy.model_management as mm
import comfy.ops
import comfy.utils
import folder_paths

from ..core.avatar.avatar_dit import is_avatar
from ..model.avatar.comfy_avatar import LongCatAvatarConfig
from ..model.comfy_model import FP8_MATMUL, LongCatVideoConfig, build_model_patcher, check_quantization, \
    pick_dtypes
from ..core.checkpoint import CONFIG_NAME, INDEX_NAMES, open_dit_checkpoint
from ..core.confined_paths import resolve_inside
from ..core.lru_cache import LruCache
from .model_names import confined, loop_free_names, resolve_model_file

WEIGHT_DTYPES = ["default", "bf16", "fp16", "fp8_e4m3fn", FP8_MATMUL, "fp8_e5m2", "fp32"]
_folder_kinds = LruCache(1024)  # folder -> holds a checkpoint, per folder mtime
log = logging.getLogger("longcat")


def sharded_folders():
    """{name shown in the UI: folder} for every folder under diffusion_models that holds a shard index, or one
    .safetensors file with a diffusers config.json naming a LongCat transformer (FastVideo's transformer/).

    The candidates are the folders of the .safetensors files ComfyUI lists (no second walk of the model folders,
    none through a link loop); what each holds is decided once per folder mtime."""
    roots = folder_paths.get_folder_paths("diffusion_models")
    candidates = {}
    for name in loop_free_names("diffusion_models"):
        name = name.replace(os.sep, "/")
        if not name.endswith(".safetensors"):
            continue
        root = next((r for r in roots if os.path.isfile(os.path.join(r, name))), None)
        parts = name.split("/")[:-1] or ["."]
        for depth in range(1, len(parts) + 1):  # the file's folder and those above it (shards in a subfolder)
            folder = "/".join(parts[:depth]) + "/"
            if root is not None:
                candidates.setdefault(folder, os.path.normpath(os.path.join(root, folder)))
    return {name: path for name, path in sorted(candidates.items()) if _holds_checkpoint(path)}


def _holds_checkpoint(folder):
    try:
        version = tuple(os.stat(p).st_mtime_ns if os.path.exists(p) else None
                        for p in (folder, *(os.path.join(folder, n) for n in INDEX_NAMES),
                                  os.path.join(folder, CONFIG_NAME)))
    except OSError:
        return False
    return _folder_kinds.get_or_build(folder, lambda: _is_checkpoint_folder(folder), version=version)


def _is_checkpoint_folder(folder):
    try:
        files = os.listdir(folder)
    except OSError:
        return False
    return any(name in files for name in INDEX_NAMES) or is_transformer_folder(folder, files)


def is_transformer_folder(folder, files):
    config = os.path.join(folder, CONFIG_NAME)
    if CONFIG_NAME not in files or sum(f.endswith(".safetensors") for f in files) != 1 or \
            resolve_inside(config, [folder]) is None:
        return False
    try:
        with open(config, encoding="utf-8") as f:
            return "longcat" in str(json.load(f).get("_class_name", "")).lower()
    except (OSError, UnicodeDecodeError, ValueError, AttributeError):
        return False


def dit_names():
    """Single files plus sharded folders; the shards themselves are not offered one by one."""
    folders = sharded_folders()
    files = [f for f in loop_free_names("diffusion_models")
             if f.endswith(".safetensors") and not any(f.replace(os.sep, "/").startswith(d) for d in folders)]
    return sorted(folders) + files


def resolve_dit(name):
    """The real path of a listed DiT (a sharded folder or a file) inside the diffusion_models folders."""
    folders = sharded_folders()
    if name in folders:
        return confined("diffusion_models", name, folders[name])
    return resolve_model_file("diffusion_models", name, "DiT")


class LongCatDiTLoader:
    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "dit_name": (dit_names(), {"tooltip": "A LongCat-Video DiT from models/diffusion_models: one .safetensors "
                                                  "file (reference, Kijai / WanVideoWrapper or FastVideo names; bf16, "
                                                  "fp8, scaled fp8 or ComfyUI-quantized), or a sharded folder (the "
                                                  "reference dit/, a diffusers transformer/). LongCat-Video-Avatar "
                                                  "DiTs too: avatar_single/, avatar_multi/, v1.5 base_model/ and its "
                                                  "INT8 base_model_int8/."}),
            "weight_dtype": (WEIGHT_DTYPES, {"default": "default", "tooltip":
                             "Storage dtype of the weights. default: what ComfyUI picks for this GPU and file (bf16 "
                             "where supported; an fp8 file stays fp8 where that is needed to fit; quantized files "
                             "keep their quantization). fp8 halves memory (computes in bf16/fp16; LoRAs then apply "
                             "at run time). fp8_e4m3fn_fast also multiplies in fp8 where the GPU can (RTX 40xx, "
                             "H100 and newer; faster, a little less exact), like --fast."}),
        }}

    RETURN_TYPES = ("MODEL",)
    OUTPUT_TOOLTIPS = ("The LongCat-Video DiT as a ComfyUI model (flow matching, shift 12, Wan 2.1 latents).",)
    FUNCTION = "load"
    CATEGORY = "LongCat"
    DESCRIPTION = "Loads the LongCat-Video 13.6B DiT so stock samplers, text encoder (CLIPLoader type wan) and Wan 2.1 VAE nodes drive it."

    def load(self, dit_name, weight_dtype):
        path = resolve_dit(dit_name)
        checkpoint = open_dit_checkpoint(path)  # validates every header and the key layout before reading
        check_quantization(checkpoint, weight_dtype)
        parameters = sum(math.prod(shape) for shape in checkpoint.shapes.values())
        quantized = bool(checkpoint.plan.quantized)
        dtype, manual_cast = pick_dtypes(weight_dtype, parameters, checkpoint.stored_dtype, quantized)
        formats = sorted({conf["format"] for conf in checkpoint.plan.quantized.values()})
        log.info("Load LongCat DiT: %s: %s layout, %s, weights %s (compute %s)", dit_name, checkpoint.plan.layout.title,
                 f"{len(checkpoint.plan.quantized)} layers quantized ({', '.join(formats)})" if quantized else
                 f"stored {checkpoint.stored_dtype}", dtype, manual_cast or dtype)
        bar = comfy.utils.ProgressBar(len(checkpoint))
        checkpoint.dtype = None if quantized else dtype  # quantized layers keep their stored tensors
        checkpoint.progress = lambda done, total: bar.update_absolute(done, total)
        avatar = is_avatar(checkpoint.config)
        if avatar:
            log.info("Load LongCat DiT: %s is a LongCat-Video-Avatar DiT (audio projection %d inputs per frame%s)",
                     dit_name, checkpoint.config["audio_window_dim"],
                     ", INT8 dequantized to the weight dtype" if checkpoint.plan.dequantized else "")
        patcher = build_model_patcher(checkpoint, dtype, manual_cast, mm.throw_exception_if_processing_interrupted,
                                      fp8_matmul=weight_dtype == FP8_MATMUL,
                                      config_class=LongCatAvatarConfig if avatar else LongCatVideoConfig)
        if weight_dtype == FP8_MATMUL and not any(isinstance(m, comfy.ops.fp8_ops.Linear)
                                                  for m in patcher.model.diffusion_model.modules()):
            log.warning("Load LongCat DiT: fp8_e4m3fn_fast asks for fp8 matrix multiplication, which this device "
                        "cannot do; the weights are stored in fp8 and multiplied in %s", manual_cast or dtype)
        patcher.model.source_name = dit_name  # for messages
        return (patcher,)

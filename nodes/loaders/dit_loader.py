"""Load LongCat DiT: a single `.safetensors` file or a reference `dit/` folder from ComfyUI's diffusion_models."""
import math
import os

import comfy.model_management as mm
import comfy.utils
import folder_paths

from ..model.comfy_model import build_model_patcher, pick_dtypes
from ..core.checkpoint import INDEX_NAME, open_dit_checkpoint
from .model_names import confined, resolve_model_file

WEIGHT_DTYPES = ["default", "bf16", "fp16", "fp8_e4m3fn", "fp32"]


def sharded_folders():
    """{name shown in the UI: folder} for every folder under diffusion_models that holds a shard index."""
    found = {}
    for root in folder_paths.get_folder_paths("diffusion_models"):
        if not os.path.isdir(root):
            continue
        for folder, _, files in os.walk(root, followlinks=True):
            if INDEX_NAME in files:
                name = os.path.relpath(folder, root).replace(os.sep, "/") + "/"
                found.setdefault(name, folder)
    return found


def dit_names():
    """Single files plus sharded folders; the shards themselves are not offered one by one."""
    folders = sharded_folders()
    files = [f for f in folder_paths.get_filename_list("diffusion_models")
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
                                                  "file, or the reference dit/ folder (shards + index.json)."}),
            "weight_dtype": (WEIGHT_DTYPES, {"default": "default", "tooltip":
                             "Storage dtype of the weights. default: what ComfyUI picks for this GPU (bf16 where "
                             "supported). fp8_e4m3fn halves memory (computes in bf16/fp16; LoRAs then apply at "
                             "run time)."}),
        }}

    RETURN_TYPES = ("MODEL",)
    OUTPUT_TOOLTIPS = ("The LongCat-Video DiT as a ComfyUI model (flow matching, shift 12, Wan 2.1 latents).",)
    FUNCTION = "load"
    CATEGORY = "LongCat"
    DESCRIPTION = "Loads the LongCat-Video 13.6B DiT so stock samplers, text encoder (CLIPLoader type wan) and Wan 2.1 VAE nodes drive it."

    def load(self, dit_name, weight_dtype):
        path = resolve_dit(dit_name)
        checkpoint = open_dit_checkpoint(path)  # validates every header and the key layout before reading
        parameters = sum(math.prod(shape) for shape in checkpoint.shapes.values())
        dtype, manual_cast = pick_dtypes(weight_dtype, parameters, checkpoint.stored_dtype)
        bar = comfy.utils.ProgressBar(len(checkpoint))
        checkpoint.dtype = dtype
        checkpoint.progress = lambda done, total: bar.update_absolute(done, total)
        return (build_model_patcher(checkpoint, dtype, manual_cast, mm.throw_exception_if_processing_interrupted),)

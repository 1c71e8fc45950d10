"""Load LongCat Text Embeddings: a prompt encoded once, saved as a .safetensors file, used as CONDITIONING.

Skips loading the 11 GB umT5 encoder on every run, and lets tests drive the DiT with tiny random embeddings.
File layout: `text_embeds` [L, C] or [1, L, C] (umT5 rows of one prompt); optional `text_mask` [L] (1 = real token).
Rows are padded with zeros to 512, exactly like ComfyUI's umT5 output for the `wan` CLIP type.
"""
import os

import torch

import folder_paths

from ..model.comfy_model import TEXT_TOKENS
from ..core.safetensors_file import ModelFileError, load_tensors
from .model_names import resolve_model_file

FOLDER = "text_embeddings"
folder_paths.add_model_folder_path(FOLDER, os.path.join(folder_paths.models_dir, FOLDER))
folder_paths.folder_names_and_paths[FOLDER] = (folder_paths.folder_names_and_paths[FOLDER][0], {".safetensors"})


def load_text_embeddings(path):
    """[1, 512, C] float tensor with padding rows zeroed."""
    tensors = load_tensors(path)
    if "text_embeds" not in tensors:
        raise ModelFileError(path, f"no 'text_embeds' tensor (found: {', '.join(sorted(tensors)) or 'nothing'})")
    embeds = tensors["text_embeds"].float()
    if embeds.dim() == 3 and embeds.shape[0] == 1:
        embeds = embeds[0]
    if embeds.dim() != 2:
        raise ModelFileError(path, f"'text_embeds' must be [tokens, channels], got {list(embeds.shape)}")
    if not torch.isfinite(embeds).all():
        raise ModelFileError(path, "'text_embeds' contains NaN or Inf values")
    mask = tensors.get("text_mask")
    if mask is not None:
        if mask.shape != embeds.shape[:1]:
            raise ModelFileError(path, f"'text_mask' shape {list(mask.shape)} does not match {embeds.shape[0]} tokens")
        embeds = embeds * (mask != 0).unsqueeze(-1)
    embeds = embeds[:TEXT_TOKENS]
    padded = torch.zeros(TEXT_TOKENS, embeds.shape[1])
    padded[:embeds.shape[0]] = embeds
    return padded.unsqueeze(0)


class LongCatTextEmbeddingsLoader:
    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"embeddings_name": (folder_paths.get_filename_list(FOLDER), {
            "tooltip": "A .safetensors file in models/text_embeddings holding 'text_embeds' [tokens, 4096]: a prompt "
                       "already encoded by umT5, so the text encoder need not be loaded."})}}

    RETURN_TYPES = ("CONDITIONING",)
    OUTPUT_TOOLTIPS = ("The prompt as conditioning for any sampler, like CLIPTextEncode's output.",)
    FUNCTION = "load"
    CATEGORY = "LongCat"
    DESCRIPTION = "Loads precomputed umT5 text embeddings (padded to 512 rows with zeros) as CONDITIONING."

    def load(self, embeddings_name):
        path = resolve_model_file(FOLDER, embeddings_name, "text embeddings")
        return ([[load_text_embeddings(path), {}]],)

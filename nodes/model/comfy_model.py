"""LongCat-Video registered with ComfyUI as a model family: config, BaseModel subclass and a streaming builder.

Core cannot detect LongCat-Video, so this does what `comfy.sd.load_diffusion_model_state_dict` does, but streams
the checkpoint tensor by tensor into the model's parameters (a 54 GB fp32 checkpoint never sits in RAM twice).
"""
import torch

import comfy.conds
import comfy.latent_formats
import comfy.model_base
import comfy.model_management as mm
import comfy.supported_models_base

from ..stages.bsa_node import OPTION as BSA_OPTION
from ..core.block_sparse_attention import BlockSparseAttention
from ..core.checkpoint import fill_parameters
from ..core.dit import ATTENTION_PARTS, COMPUTE_DTYPES, FrameChunks, LongCatDiT
from .model_patcher import LongCatModelPatcher

TEXT_TOKENS = 512  # the reference encodes prompts to 512 umT5 rows
# The peak of one step, in rows of [hidden] per token: the residual stream and one block's q, k, v for every token,
# and 4 more for each token of the largest self-attention chunk (its modulated input and its qkv output). Measured
# (bench/bench_activation_memory.py: full size, fake tensors; eager and CUDA paths, runtime LoRA on or off) it is
# within 2% of that at 480p / 93 frames and at the 720p refinement; MARGIN covers the rest (captions, latents).
ROWS_PER_TOKEN, ROWS_PER_CHUNK_TOKEN, MARGIN = 4, 4, 1.1


class LongCatComfyDiT(LongCatDiT):
    """The DiT as ComfyUI's flow sampling calls it. The reference output is x0 - eps (its sampler negates it);
    ComfyUI's CONST sampling wants the velocity eps - x0, so the sign flips here and nowhere else."""

    def __init__(self, *args, dtype=None, **kwargs):
        super().__init__(*args, dtype=dtype, **kwargs)
        self.dtype = dtype  # BaseModel.get_dtype() reads it

    def forward(self, x, timestep, context, control=None, transformer_options={}, **kwargs):
        sparse = transformer_options.get(BSA_OPTION)
        self.set_self_attention(BlockSparseAttention(sparse["sparsity"]) if sparse else None)
        try:
            return -super().forward(x, timestep, context[:, :TEXT_TOKENS], transformer_options=transformer_options)
        finally:
            self.set_self_attention(None)


class LongCatVideoModel(comfy.model_base.BaseModel):
    def __init__(self, model_config, device=None):
        super().__init__(model_config, comfy.model_base.ModelType.FLOW, device=device, unet_model=LongCatComfyDiT)

    def memory_required(self, input_shape, cond_shapes={}):
        """Activation memory of one step on latents of `input_shape` [B, C, T, H, W], what ComfyUI keeps free next
        to the weights (see ROWS_PER_TOKEN); ComfyUI's area formula (memory_usage_factor) is not used."""
        B, _, T, H, W = input_shape
        unet_config = self.model_config.unet_config
        _, ph, pw = unet_config.get("patch_size", (1, 2, 2))
        grid = (T, -(-H // ph), -(-W // pw))
        chunk = max(rows.stop - rows.start for rows, _ in FrameChunks(grid)(ATTENTION_PARTS))
        rows = ROWS_PER_TOKEN * grid[0] * grid[1] * grid[2] + ROWS_PER_CHUNK_TOKEN * chunk
        dtype = self.manual_cast_dtype or self.get_dtype()
        element_size = mm.dtype_size(dtype) if dtype in COMPUTE_DTYPES else 2  # fp8 storage computes in 16 bits
        return MARGIN * B * rows * unet_config["hidden_size"] * element_size

    def extra_conds(self, **kwargs):
        out = super().extra_conds(**kwargs)
        cross_attn = kwargs.get("cross_attn", None)
        if cross_attn is not None:  # CONDRegular: batching never pads text rows by repetition
            out["c_crossattn"] = comfy.conds.CONDRegular(cross_attn)
        return out


class LongCatVideoConfig(comfy.supported_models_base.BASE):
    unet_config = {}
    unet_extra_config = {}
    sampling_settings = {"shift": 12.0, "multiplier": 1000}
    latent_format = comfy.latent_formats.Wan21
    supported_inference_dtypes = [torch.bfloat16, torch.float16, torch.float32]

    def get_model(self, state_dict, prefix="", device=None):
        return LongCatVideoModel(self, device=device)


def pick_dtypes(choice, parameters, stored_dtype):
    """(weight dtype, manual cast dtype) the way core's diffusion-model loader chooses them."""
    load_device = mm.get_torch_device()
    supported = LongCatVideoConfig.supported_inference_dtypes
    if choice == "default":
        weight_dtype = mm.unet_dtype(model_params=parameters, supported_dtypes=supported, weight_dtype=stored_dtype)
    else:
        weight_dtype = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32,
                        "fp8_e4m3fn": torch.float8_e4m3fn}[choice]
    return weight_dtype, mm.unet_manual_cast(weight_dtype, load_device, supported)


def build_model_patcher(checkpoint, weight_dtype, manual_cast_dtype, check_interrupt=None):
    """A LongCatModelPatcher around a LongCatVideoModel, its parameters filled from the streaming `checkpoint`."""
    config = LongCatVideoConfig(dict(checkpoint.config))
    config.set_inference_dtype(weight_dtype, manual_cast_dtype)
    offload_device = mm.unet_offload_device()
    model = config.get_model({}, "", device="meta")  # parameters without storage: no second copy in RAM
    model.diffusion_model.to_empty(device=offload_device)
    model.device = None
    fill_parameters(model.diffusion_model, checkpoint, check_interrupt)
    return LongCatModelPatcher(model, load_device=mm.get_torch_device(), offload_device=offload_device)

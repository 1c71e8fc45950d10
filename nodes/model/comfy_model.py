"""LongCat-Video registered with ComfyUI as a model family: config, BaseModel subclass and a streaming builder.

Core cannot detect LongCat-Video, so this does what `comfy.sd.load_diffusion_model_state_dict` does, but streams
the checkpoint tensor by tensor into the model's parameters (a 54 GB fp32 checkpoint never sits in RAM twice).
"""
from functools import partial

import torch

import comfy.conds
import comfy.latent_formats
import comfy.model_base
import comfy.model_management as mm
import comfy.quant_ops
import comfy.supported_models_base
import comfy.utils

from ..stages.bsa_node import OPTION as BSA_OPTION
from ..core.block_sparse_attention import block_sparse_attention
from ..core.checkpoint import CheckpointError, fill_parameters
from ..core.dit import LongCatDiT
from ..core.layouts.quantized_model import fill_modules, split_fused_linears
from .model_patcher import LongCatModelPatcher

TEXT_TOKENS = 512  # the reference encodes prompts to 512 umT5 rows


class LongCatComfyDiT(LongCatDiT):
    """The DiT as ComfyUI's flow sampling calls it. The reference output is x0 - eps (its sampler negates it);
    ComfyUI's CONST sampling wants the velocity eps - x0, so the sign flips here and nowhere else."""

    def __init__(self, *args, dtype=None, split_fused=(), **kwargs):
        super().__init__(*args, dtype=dtype, **kwargs)
        self.dtype = dtype  # BaseModel.get_dtype() reads it
        split_fused_linears(self, split_fused, kwargs["operations"], dtype, kwargs.get("device"))

    def forward(self, x, timestep, context, control=None, transformer_options={}, **kwargs):
        sparse = transformer_options.get(BSA_OPTION)
        self.set_self_attention(partial(block_sparse_attention, sparsity=sparse["sparsity"]) if sparse else None)
        try:
            return -super().forward(x, timestep, context[:, :TEXT_TOKENS], transformer_options=transformer_options)
        finally:
            self.set_self_attention(None)


class LongCatVideoModel(comfy.model_base.BaseModel):
    def __init__(self, model_config, device=None):
        super().__init__(model_config, comfy.model_base.ModelType.FLOW, device=device, unet_model=LongCatComfyDiT)

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
    memory_usage_factor = 1.8

    def __init__(self, unet_config):
        super().__init__(unet_config)
        self.memory_usage_factor = unet_config["hidden_size"] / 2222  # as core's Wan configs scale it

    def get_model(self, state_dict, prefix="", device=None):
        return LongCatVideoModel(self, device=device)


WEIGHT_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32,
                 "fp8_e4m3fn": torch.float8_e4m3fn, "fp8_e5m2": torch.float8_e5m2}


def pick_dtypes(choice, parameters, stored_dtype, quantized=False):
    """(weight dtype, manual cast dtype) the way core's diffusion-model loader chooses them (comfy/sd.py
    load_diffusion_model_state_dict): for quantized layers the stored dtype does not count and the compute dtype
    is chosen for the device alone."""
    load_device = mm.get_torch_device()
    supported = LongCatVideoConfig.supported_inference_dtypes
    if choice == "default":
        weight_dtype = mm.unet_dtype(model_params=parameters, supported_dtypes=supported,
                                     weight_dtype=None if quantized else stored_dtype)
    else:
        weight_dtype = WEIGHT_DTYPES[choice]
    return weight_dtype, mm.unet_manual_cast(None if quantized else weight_dtype, load_device, supported)


def check_quantization(checkpoint, choice):
    """A quantized checkpoint loads only in formats this ComfyUI's ops know (comfy/quant_ops.py QUANT_ALGOS:
    0.8.0 has float8_e4m3fn, float8_e5m2 and nvfp4; 0.33 adds mxfp8, int8_tensorwise, ...), stored as it is."""
    formats = {conf["format"] for conf in checkpoint.plan.quantized.values()}
    unknown = sorted(formats - set(comfy.quant_ops.QUANT_ALGOS))
    if unknown:
        layer = next(m for m, conf in checkpoint.plan.quantized.items() if conf["format"] in unknown)
        raise CheckpointError(checkpoint.path, f"layer {layer} is quantized as {', '.join(unknown)}, which this "
                                               f"ComfyUI does not support (it knows "
                                               f"{', '.join(sorted(comfy.quant_ops.QUANT_ALGOS))}): update ComfyUI")
    if formats and WEIGHT_DTYPES.get(choice) in (torch.float8_e4m3fn, torch.float8_e5m2):
        raise CheckpointError(checkpoint.path, f"is already quantized ({', '.join(sorted(formats))}): choose "
                                               "weight_dtype default (or bf16 / fp16 / fp32 for its other layers)")


def build_model_patcher(checkpoint, weight_dtype, manual_cast_dtype, check_interrupt=None):
    """A LongCatModelPatcher around a LongCatVideoModel, its parameters filled from the streaming `checkpoint`.
    Quantized layers get ComfyUI's mixed-precision ops, picked from the per-layer configs as core does
    (comfy/utils.py detect_layer_quantization -> model_config.quant_config -> comfy/ops.py pick_operations)."""
    config = LongCatVideoConfig(dict(checkpoint.config))
    config.set_inference_dtype(weight_dtype, manual_cast_dtype)
    offload_device = mm.unet_offload_device()
    if checkpoint.plan.quantized:
        config.quant_config = comfy.utils.detect_layer_quantization(
            {f"{module}.comfy_quant": None for module in checkpoint.plan.quantized}, "")
        # Quantized layers create their weights while loading, on the device they were built for.
        model = config.get_model({}, "", device=offload_device)
        fill_modules(model.diffusion_model, checkpoint, check_interrupt)
    else:
        model = config.get_model({}, "", device="meta")  # parameters without storage: no second copy in RAM
        model.diffusion_model.to_empty(device=offload_device)
        fill_parameters(model.diffusion_model, checkpoint, check_interrupt)
    model.device = None
    return LongCatModelPatcher(model, load_device=mm.get_torch_device(), offload_device=offload_device)

"""LongCat-Video registered with ComfyUI as a model family: config, BaseModel subclass and a streaming builder.

Core cannot detect LongCat-Video, so this does what `comfy.sd.load_diffusion_model_state_dict` does, but streams
the checkpoint tensor by tensor into the model's parameters (a 54 GB fp32 checkpoint never sits in RAM twice).
"""
import torch

import comfy.conds
import comfy.latent_formats
import comfy.model_base
import comfy.model_management as mm
import comfy.patcher_extension
import comfy.quant_ops
import comfy.supported_models_base
import comfy.utils

from ..core.block_sparse_attention import BlockSparseAttention
from ..core.checkpoint import CheckpointError, fill_parameters
from ..core.conditioning import condition_frame_count, per_frame_timesteps
from ..core.condition_attention import ConditionCache
from ..core.condition_offload import ON_DEVICE_BLOCKS
from ..core.dit import COMPUTE_DTYPES, LongCatDiT
from ..core.frame_chunks import ATTENTION_PARTS, FrameChunks
from ..core.layouts.quantized_model import fill_modules, split_fused_linears
from .attention import comfy_kernel
from .condition_offload import CONDITION_OFFLOAD, offload_condition
from .model_patcher import LongCatModelPatcher

TEXT_TOKENS = 512  # the reference encodes prompts to 512 umT5 rows
# transformer_options keys the model reads (nodes set them; the model owns their names)
CONDITION_CACHE = "longcat_condition_cache"  # the ConditionCache of the running sampler
BSA_OPTION = "longcat_block_sparse"  # {"sparsity": float}: block-sparse self-attention on this branch
AVATAR_CONDITION = "longcat_avatar"  # conditioning key: the avatar's AvatarCondition (model/avatar/)
CACHED_FROM_LATENTS = 2  # conditions this long (a clip: continuation, long video) run from the cache
# The peak of one step, in rows of [hidden] per token: the residual stream and one block's q, k, v for every token,
# and 4 more for each token of the largest self-attention chunk (its modulated input and its qkv output). Measured
# (bench/bench_activation_memory.py: full size, fake tensors; eager and CUDA paths, runtime LoRA on or off) it is
# within 2% of that at 480p / 93 frames and at the 720p refinement; MARGIN covers the rest (captions, latents).
ROWS_PER_TOKEN, ROWS_PER_CHUNK_TOKEN, MARGIN = 4, 4, 1.1


class LongCatComfyDiT(LongCatDiT):
    """The DiT as ComfyUI's flow sampling calls it. The reference output is x0 - eps (its sampler negates it);
    ComfyUI's CONST sampling wants the velocity eps - x0, so the sign flips here and nowhere else. The condition
    frames (image-to-video, continuation) are the leading frames the sampler's denoise mask holds at 0. A clip's
    condition (2 or more latent frames: continuation, long video, conditioned refinement) runs from a cache of its
    keys and values, as the reference's `generate_vc` does; a single image frame runs with the noisy frames, as
    its `generate_i2v` does (with CFG-Zero* the two differ: only the uncached image frame enters the scale)."""

    def __init__(self, *args, dtype=None, split_fused=(), **kwargs):
        super().__init__(*args, dtype=dtype, **kwargs)
        self.dtype = dtype  # BaseModel.get_dtype() reads it
        self.attention = comfy_kernel()
        split_fused_linears(self, split_fused, kwargs["operations"], dtype, kwargs.get("device"))

    def forward(self, x, timestep, context, control=None, transformer_options={}, **kwargs):
        """Through ComfyUI's DIFFUSION_MODEL wrappers (EasyCache, LazyCache, ...), as core's models run."""
        return comfy.patcher_extension.WrapperExecutor.new_class_executor(
            self._forward, self,
            comfy.patcher_extension.get_all_wrappers(comfy.patcher_extension.WrappersMP.DIFFUSION_MODEL,
                                                     transformer_options),
        ).execute(x, timestep, context, control, transformer_options, **kwargs)

    def _forward(self, x, timestep, context, control=None, transformer_options={}, num_cond_latents=0, **kwargs):
        sparse = transformer_options.get(BSA_OPTION)
        self.set_self_attention(BlockSparseAttention(sparse["sparsity"]) if sparse else None)
        cache = transformer_options.get(CONDITION_CACHE) if num_cond_latents >= CACHED_FROM_LATENTS else None
        try:
            return -super().forward(x, timestep, context[:, :TEXT_TOKENS], num_cond_latents=num_cond_latents,
                                    condition_cache=cache, transformer_options=transformer_options)
        finally:
            self.set_self_attention(None)


class LongCatVideoModel(comfy.model_base.BaseModel):
    cached_condition_latents = 0  # the condition the next sampling run caches (set by condition_per_run)
    condition_offload = False  # ... and whether that cache lives in CPU memory (set by condition_per_run too)
    unet_model = LongCatComfyDiT

    def __init__(self, model_config, device=None):
        super().__init__(model_config, comfy.model_base.ModelType.FLOW, device=device, unet_model=self.unet_model)

    def memory_required(self, input_shape, cond_shapes={}):
        """Activation memory of one step on latents of `input_shape` [B, C, T, H, W], what ComfyUI keeps free next
        to the weights (see ROWS_PER_TOKEN), and the condition cache of a continuation: all of it, or
        ON_DEVICE_BLOCKS blocks of it when it lives in CPU memory; a model variant's extra frames (extra_frames)
        count in both. ComfyUI's area formula (memory_usage_factor) is not used."""
        extra = self.extra_frames(cond_shapes)
        grid = self.token_grid(input_shape, extra)
        chunk = max(rows.stop - rows.start for rows, _ in FrameChunks(grid)(ATTENTION_PARTS))
        rows = ROWS_PER_TOKEN * grid[0] * grid[1] * grid[2] + ROWS_PER_CHUNK_TOKEN * chunk
        activations = input_shape[0] * rows * self.model_config.unet_config["hidden_size"] * self.element_size()
        cache = self.condition_cache_bytes(input_shape, ON_DEVICE_BLOCKS if self.condition_offload else None, extra)
        return MARGIN * (activations + cache)

    def condition_cache_bytes(self, input_shape, blocks=None, extra=0):
        """k and v of the cached condition's tokens (one batch row, `extra` frames more: a variant's reference) in
        `blocks` blocks (None: every block)."""
        unet_config = self.model_config.unet_config
        grid = self.token_grid(input_shape)
        blocks = unet_config["depth"] if blocks is None else min(blocks, unet_config["depth"])
        cached = self.cached_condition_latents + extra if self.cached_condition_latents else 0
        return 2 * blocks * cached * grid[1] * grid[2] * unet_config["hidden_size"] * self.element_size()

    def token_grid(self, input_shape, extra=0):
        _, ph, pw = self.model_config.unet_config.get("patch_size", (1, 2, 2))
        return input_shape[2] + extra, -(-input_shape[3] // ph), -(-input_shape[4] // pw)

    def element_size(self):
        dtype = self.manual_cast_dtype or self.get_dtype()
        return mm.dtype_size(dtype) if dtype in COMPUTE_DTYPES else 2  # fp8 storage computes in 16 bits

    def extra_frames(self, cond_shapes):
        """Latent frames the model runs besides the sampler's (a model variant's prepended reference): none."""
        return 0

    def extra_conds(self, **kwargs):
        if kwargs.get(AVATAR_CONDITION) is not None and not self.model_config.unet_config.get("audio_dim"):
            raise ValueError("the conditioning carries avatar audio (LongCat Avatar Condition), but this DiT is not "
                             "a LongCat-Video-Avatar model: load an avatar DiT (avatar_single/, avatar_multi/, "
                             "base_model/ or base_model_int8/)")
        out = super().extra_conds(**kwargs)
        cross_attn = kwargs.get("cross_attn", None)
        if cross_attn is not None:  # CONDRegular: batching never pads text rows by repetition
            out["c_crossattn"] = comfy.conds.CONDRegular(cross_attn)
        denoise_mask = kwargs.get("denoise_mask", None)
        if denoise_mask is not None:  # the condition frames, read off the mask once per run (not in every step,
            # where reading a tensor's value would break a torch.compile'd graph)
            out["num_cond_latents"] = comfy.conds.CONDConstant(condition_frame_count(denoise_mask))
        return out

    def process_timestep(self, timestep, x=None, num_cond_latents=0, **kwargs):
        """Timestep 0 on the condition frames, the sampler's t on the others."""
        if not num_cond_latents:
            return timestep
        return per_frame_timesteps(timestep, x.shape[2], num_cond_latents)

    def scale_latent_inpaint(self, sigma, noise, latent_image, **kwargs):
        """The condition frames go into the model clean, at every step (not re-noised to the step's sigma)."""
        return latent_image


class LongCatVideoConfig(comfy.supported_models_base.BASE):
    unet_config = {}
    unet_extra_config = {}
    sampling_settings = {"shift": 12.0, "multiplier": 1000}
    latent_format = comfy.latent_formats.Wan21
    supported_inference_dtypes = [torch.bfloat16, torch.float16, torch.float32]

    def get_model(self, state_dict, prefix="", device=None):
        return LongCatVideoModel(self, device=device)


WEIGHT_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32,
                 "fp8_e4m3fn": torch.float8_e4m3fn, "fp8_e4m3fn_fast": torch.float8_e4m3fn,
                 "fp8_e5m2": torch.float8_e5m2}
FP8_MATMUL = "fp8_e4m3fn_fast"  # fp8 weights multiplied in fp8 (core's UNETLoader choice of the same name)


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


def build_model_patcher(checkpoint, weight_dtype, manual_cast_dtype, check_interrupt=None, fp8_matmul=False,
                        config_class=LongCatVideoConfig):
    """A LongCatModelPatcher around a LongCatVideoModel (or `config_class`'s model), its parameters filled from the
    streaming `checkpoint`. Layers come from comfy/ops.py pick_operations, as core's models get them: quantized
    layers ComfyUI's mixed-precision ops, picked from the per-layer configs (comfy/utils.py
    detect_layer_quantization -> model_config.quant_config); fp8 weights its fp8 matmul ops where `fp8_matmul` or
    `--fast` asks and the device computes in fp8."""
    config = config_class(dict(checkpoint.config))
    config.set_inference_dtype(weight_dtype, manual_cast_dtype)
    config.optimizations["fp8"] = fp8_matmul
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
    patcher = LongCatModelPatcher(model, load_device=mm.get_torch_device(), offload_device=offload_device)
    patcher.add_wrapper_with_key(comfy.patcher_extension.WrappersMP.OUTER_SAMPLE, CONDITION_CACHE,
                                 condition_per_run)
    return patcher


def condition_per_run(executor, noise, latent_image, sampler, sigmas, denoise_mask=None, *args, **kwargs):
    """One sampling run's condition, set up before ComfyUI estimates the run's memory and loads the model: its
    length and where its cache lives, for the estimate (on a 480p continuation the cache is about 5 GB to keep
    free next to the weights, unless it is offloaded to CPU memory), and a ConditionCache for its keys and values,
    released when the run ends, so a long video holds only the current segment's condition. The guider's
    model_options are this run's copy, which the sampler's options copy again (the cache itself is shared)."""
    guider = executor.class_obj
    patcher = guider.model_patcher
    model = patcher.model
    frames = 0 if denoise_mask is None else condition_frame_count(denoise_mask)
    model.cached_condition_latents = frames if frames >= CACHED_FROM_LATENTS else 0
    options = guider.model_options.setdefault("transformer_options", {})
    model.condition_offload = bool(model.cached_condition_latents) and \
        offload_condition(patcher, options.get(CONDITION_OFFLOAD, "auto"), noise.shape)
    pinning = model.condition_offload and mm.is_device_cuda(patcher.load_device)
    cache = ConditionCache(model.condition_offload, *((mm.pin_memory, mm.unpin_memory) if pinning else ()))
    options[CONDITION_CACHE] = cache
    try:
        return executor(noise, latent_image, sampler, sigmas, denoise_mask, *args, **kwargs)
    finally:
        model.cached_condition_latents, model.condition_offload = 0, False
        options.pop(CONDITION_CACHE, None)
        cache.release()

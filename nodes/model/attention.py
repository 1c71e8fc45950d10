"""The DiT's attention kernel inside ComfyUI: `comfy.ldm.modules.attention.optimized_attention`, as core's models
call it, so the launch flags (--use-sage-attention, --use-flash-attention, --use-pytorch-cross-attention, ...) pick
the kernel and nodes that set `transformer_options["optimized_attention_override"]` replace it for a branch.

One exception: where ComfyUI picked sub-quadratic attention only because no flag asked for anything (its default
off NVIDIA, e.g. on CPU), LongCat uses ComfyUI's PyTorch SDPA kernel instead. The DiT already chunks its queries to
bound memory, and sub-quadratic attention is slower and gives other roundings. A flag that asks for split or
sub-quadratic attention is followed. Block-sparse attention (LongCat Block-Sparse Attention) stays LongCat's own.
"""
import logging

import comfy.ldm.modules.attention as comfy_attention
from comfy.cli_args import args

log = logging.getLogger("longcat")


def pick_kernel():
    """ComfyUI's attention function for LongCat (see the module doc), logged."""
    chosen = comfy_attention.optimized_attention
    asked = args.use_split_cross_attention or args.use_quad_cross_attention
    if chosen is comfy_attention.attention_sub_quad and not asked:
        log.info("LongCat attention: PyTorch SDPA (ComfyUI's default here is sub-quadratic attention, which LongCat's "
                 "own chunking makes unnecessary; --use-quad-cross-attention would force it)")
        return comfy_attention.attention_pytorch
    log.info("LongCat attention: ComfyUI's %s", chosen.__name__)
    return chosen


def comfy_kernel():
    """An attention kernel for `LongCatDiT.attention`: q, k, v [B, heads, n, 128] -> [B, heads, n, 128] through
    ComfyUI's dispatch, with the step's transformer_options (where overrides live)."""
    kernel = pick_kernel()

    def attention(q, k, v, heads, transformer_options=None):
        return kernel(q, k, v, heads, skip_reshape=True, skip_output_reshape=True,
                      transformer_options=transformer_options)

    return attention

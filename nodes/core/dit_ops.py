"""The DiT's pieces below its modules: the fp32 elementwise islands (one fused kernel each on CUDA), fp32 calls of
low-precision layers, the per-head RMSNorm, the timestep embedding, the 3D RoPE tables and the default attention
kernel, each with the reference's roundings.
"""
import functools
import logging
import math
import os

import torch
import torch.nn as nn
import torch.nn.functional as F

log = logging.getLogger(__name__)

HEAD_DIM = 128
NORM_EPS = 1e-6
ROPE_BASE = 10000.0


def fused_on_cuda(fn):
    """The fp32 elementwise islands are memory bound: eagerly each is 5-10 passes over a [tokens, 4096] tensor.
    On CUDA they run as one torch.compile'd kernel each (set LONGCAT_COMPILE=0 to turn that off); elsewhere, or if
    compiling fails, eagerly with the same math. Inside a model that torch.compile traces (TorchCompileModel), the
    plain math is traced with the rest."""
    compiled = None

    @functools.wraps(fn)
    def wrapper(*args):
        nonlocal compiled
        if torch.compiler.is_compiling():
            return fn(*args)
        if args[0].is_cuda and os.environ.get("LONGCAT_COMPILE", "1") != "0" and compiled is not False:
            try:
                if compiled is None:
                    compiled = torch.compile(fn, dynamic=None)
                return compiled(*args)
            except Exception as e:  # no Triton, an unsupported GPU, a compiler error: the eager math is the same
                log.warning("LongCat: torch.compile of %s failed (%s); running it eagerly", fn.__name__, e)
                compiled = False
        return fn(*args)

    return wrapper


def run_fp32(module, x):
    """Call `module` with fp32 math, as the reference does inside `autocast(dtype=float32)`.

    Weights stay in their storage dtype. fp32 weights, and ComfyUI layers that cast their weight to the input
    (`comfy_cast_weights`), just take an fp32 input. Other low-precision weights get the reference's mechanism,
    CUDA autocast to fp32; CPU autocast has no fp32 mode, so there the layer runs in its weights' dtype.
    """
    x = x.float()
    layers = [m for m in module.modules() if getattr(m, "weight", None) is not None]
    if all(m.weight.dtype == torch.float32 or getattr(m, "comfy_cast_weights", False) for m in layers):
        return module(x)
    if x.device.type == "cuda":
        with torch.autocast("cuda", dtype=torch.float32):
            return module(x)
    return module(x.to(layers[0].weight.dtype)).float()


class RMSNorm(nn.Module):
    """Per-head RMSNorm of q and k: normalised in fp32, cast back, then scaled by the weight (reference order)."""

    def __init__(self, dim, eps=NORM_EPS, dtype=None, device=None):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim, dtype=dtype, device=device))

    def forward(self, x):
        return rms_norm(x, self.cast_weight(x), self.eps)

    def cast_weight(self, x):
        return self.weight.to(device=x.device, dtype=x.dtype)


@fused_on_cuda
def rms_norm(x, weight, eps):
    xf = x.float()
    return (xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + eps)).type_as(x) * weight


@fused_on_cuda
def norm_rope(x, weight, cos, sin, eps):
    """Per-head RMSNorm, then RoPE: interleaved pairs (a, b) -> (a cos - b sin, b cos + a sin).

    The reference's roundings: normalised in fp32 and cast back, scaled by the weight in x's dtype, rotated in fp32
    and cast back. x: [B, heads, n, 128]; weight [128] in x's dtype; cos, sin: [n, 128] fp32. Run eagerly it holds
    one fp32 working copy of x and one rotated copy (in-place steps, same results).
    """
    xf = x.to(torch.float32, copy=True)
    xf.mul_(torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + eps))
    xf.copy_(xf.type_as(x) * weight)
    rotated = torch.empty_like(xf)
    rotated[..., 0::2] = xf[..., 1::2]
    rotated[..., 0::2].neg_()
    rotated[..., 1::2] = xf[..., 0::2]
    xf.mul_(cos).add_(rotated.mul_(sin))
    del rotated
    return xf.type_as(x)


@fused_on_cuda
def modulate(x, shift, scale):
    """adaLN modulation per latent frame, in fp32: LN(x) * (1 + scale) + shift.

    x: [B, N, C] in the model dtype; shift, scale: [B, T, 1, C] fp32. Returns [B, N, C] in x's dtype.
    """
    B, N, C = x.shape
    T = shift.shape[1]
    h = F.layer_norm(x.view(B, T, N // T, C).float(), (C,), eps=NORM_EPS)
    return h.mul_(1 + scale).add_(shift).view(B, N, C).to(x.dtype)


@fused_on_cuda
def gated_add_(x, gate, out):
    """Residual add x += gate * out per latent frame, in place: fp32 math, one rounding to the residual dtype."""
    B, N, C = x.shape
    T = gate.shape[1]
    xv = x.view(B, T, N // T, C)
    xv.copy_((gate * out.view(B, T, N // T, C)).add_(xv))


@fused_on_cuda
def silu_mul(a, b):
    """SiLU(a) * b, written into a (the FFN's own intermediate)."""
    return F.silu(a, inplace=True).mul_(b)


def timestep_embedding(t, dim, max_period=10000):
    """Sinusoidal embedding of 0..1000-scale timesteps, [cos | sin] order (not [sin | cos]).

    The frequencies are computed on the CPU, as in the reference: CUDA's exp differs from the CPU's in the last
    bit for a third of them, and at t ~ 1000 that shifts the phases enough to change bf16 outputs visibly.
    """
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, dtype=torch.float32) / half).to(t.device)
    args = t[:, None].float() * freqs[None]
    return torch.cat([torch.cos(args), torch.sin(args)], dim=-1)


class Rope3D:
    """The 3D RoPE over a (T, H', W') token grid, T-major token order, as cos/sin tables of whole latent frames.

    The head dim splits into t:44 | h:42 | w:42 channels; each axis has freqs 1/base^(2i/dim_axis) at integer
    positions, and each frequency covers an interleaved channel pair (2i, 2i+1). Every channel depends on one axis
    only, so the tables are kept per axis and `tables(frames)` assembles the [n, 128] fp32 cos and sin of a slice
    of frames on demand (no table spans all tokens). The frequencies are computed on the CPU as in the reference
    (CUDA's pow differs in the last bit for some); angles and cos/sin on `device`.
    """

    def __init__(self, grid, device, time_positions=None):
        """time_positions: the time index of each latent frame (a list of T numbers); None: 0, 1, ..., T-1."""
        dims = (HEAD_DIM - 4 * (HEAD_DIM // 6), 2 * (HEAD_DIM // 6), 2 * (HEAD_DIM // 6))
        self.grid = tuple(grid)
        self.axes = []  # per axis: (cos, sin) [positions, channels of the axis]
        positions = [time_positions if time_positions is not None else range(grid[0]), range(grid[1]),
                     range(grid[2])]
        for axis, dim in zip(positions, dims):
            freqs = (1.0 / (ROPE_BASE ** (torch.arange(0, dim, 2)[: dim // 2].float() / dim))).to(device)
            angles = (torch.tensor(list(axis), device=device, dtype=torch.float32)[:, None] * freqs[None])
            angles = angles.repeat_interleave(2, dim=-1)
            self.axes.append((angles.cos(), angles.sin()))

    def tables(self, frames):
        """cos, sin [tokens of frames, 128] for a slice of latent frames."""
        _, H, W = self.grid
        (cos_t, sin_t), (cos_h, sin_h), (cos_w, sin_w) = self.axes
        n = frames.stop - frames.start

        def assemble(t, h, w):
            return torch.cat([t[frames, None, None].expand(n, H, W, -1), h[None, :, None].expand(n, H, W, -1),
                              w[None, None].expand(n, H, W, -1)], dim=-1).reshape(-1, HEAD_DIM)

        return assemble(cos_t, cos_h, cos_w), assemble(sin_t, sin_h, sin_w)


def sdpa(q, k, v, heads, transformer_options=None):
    """The default attention kernel: exact softmax(q k^T / sqrt(128)) v, PyTorch's SDPA.

    Every attention of the model (self-attention where no backend replaces it, cross-attention) calls the kernel
    the model holds (`LongCatDiT.attention`) as `attention(q, k, v, heads, transformer_options=...)`: q, k, v
    [B, heads, n, 128] -> [B, heads, n, 128]; `transformer_options` is the caller's dict, passed through untouched
    (ComfyUI's kernels read their overrides from it), unused here.
    """
    return F.scaled_dot_product_attention(q, k, v)

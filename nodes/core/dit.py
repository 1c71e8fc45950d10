"""The LongCat-Video DiT (Meituan, 13.6B) in plain torch.

Layers come from an injected `operations` namespace (`Linear`, `Conv3d`, `LayerNorm`): `torch.nn` by default,
`comfy.ops.*` inside ComfyUI, so low-VRAM offload, fp8 storage with manual casting and per-layer patches keep
working. Every Linear is called as a module, never through `F.linear` on its weight, so forward hooks (runtime
LoRA) see its input and output. Module and parameter names are those of the reference state dict; there are no
buffers (RoPE tables are computed per call).

Precision follows the reference: the timestep embedder, the adaLN linears, the final layer, every norm, RoPE, the
modulation and the gated residual adds run in fp32; the residual stream and the attention / FFN linears run in
the model dtype.
"""
import functools
import logging
import math
import os

import torch
import torch.nn as nn
import torch.nn.functional as F
from einops import rearrange

log = logging.getLogger(__name__)

HEAD_DIM = 128
NORM_EPS = 1e-6
ROPE_BASE = 10000.0
COMPUTE_DTYPES = (torch.float32, torch.float16, torch.bfloat16)


def fused_on_cuda(fn):
    """The fp32 elementwise islands are memory bound: eagerly each is 5-10 passes over a [tokens, 4096] tensor.
    On CUDA they run as one torch.compile'd kernel each (set LONGCAT_COMPILE=0 to turn that off); elsewhere, or if
    compiling fails, eagerly with the same math."""
    compiled = None

    @functools.wraps(fn)
    def wrapper(*args):
        nonlocal compiled
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
        return rms_norm(x, self.weight.to(device=x.device, dtype=x.dtype), self.eps)


@fused_on_cuda
def rms_norm(x, weight, eps):
    xf = x.float()
    return (xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + eps)).type_as(x) * weight


@fused_on_cuda
def modulate(x, shift, scale):
    """adaLN modulation per latent frame, in fp32: LN(x) * (1 + scale) + shift.

    x: [B, N, C] in the model dtype; shift, scale: [B, T, 1, C] fp32. Returns [B, N, C] in x's dtype.
    """
    B, N, C = x.shape
    T = shift.shape[1]
    h = F.layer_norm(x.view(B, T, N // T, C).float(), (C,), eps=NORM_EPS)
    return (h * (1 + scale) + shift).view(B, N, C).to(x.dtype)


@fused_on_cuda
def gated_add(x, gate, out):
    """Residual add x + gate * out per latent frame, in fp32, stored back in the residual dtype."""
    B, N, C = x.shape
    T = gate.shape[1]
    y = x.view(B, T, N // T, C) + gate * out.view(B, T, N // T, C)
    return y.view(B, N, C).to(x.dtype)


def timestep_embedding(t, dim, max_period=10000):
    """Sinusoidal embedding of 0..1000-scale timesteps, [cos | sin] order (not [sin | cos]).

    The frequencies are computed on the CPU, as in the reference: CUDA's exp differs from the CPU's in the last
    bit for a third of them, and at t ~ 1000 that shifts the phases enough to change bf16 outputs visibly.
    """
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, dtype=torch.float32) / half).to(t.device)
    args = t[:, None].float() * freqs[None]
    return torch.cat([torch.cos(args), torch.sin(args)], dim=-1)


def rope_3d(grid, device):
    """cos, sin tables [N, 128] (fp32) of the 3D RoPE over a (T, H', W') token grid, T-major token order.

    The head dim splits into t:44 | h:42 | w:42 channels; each axis has freqs 1/base^(2i/dim_axis) at integer
    positions, and each frequency covers an interleaved channel pair (2i, 2i+1). The frequencies are computed
    on the CPU as in the reference (CUDA's pow differs in the last bit for some); angles and cos/sin on `device`.
    """
    dims = (HEAD_DIM - 4 * (HEAD_DIM // 6), 2 * (HEAD_DIM // 6), 2 * (HEAD_DIM // 6))
    angles = []
    for axis, (n, dim) in enumerate(zip(grid, dims)):
        freqs = (1.0 / (ROPE_BASE ** (torch.arange(0, dim, 2)[: dim // 2].float() / dim))).to(device)
        a = torch.arange(n, device=device, dtype=torch.float32)[:, None] * freqs[None]
        a = a.repeat_interleave(2, dim=-1)
        shape = [1, 1, 1, dim]
        shape[axis] = n
        angles.append(a.view(shape).expand(*grid, dim))
    angles = torch.cat(angles, dim=-1).reshape(-1, HEAD_DIM)
    return angles.cos(), angles.sin()


@fused_on_cuda
def apply_rope(x, cos, sin):
    """Rotate interleaved pairs (a, b) -> (a cos - b sin, b cos + a sin) in fp32; x: [B, heads, N, 128]."""
    xf = x.float()
    a, b = xf.unflatten(-1, (-1, 2)).unbind(-1)
    rotated = torch.stack((-b, a), dim=-1).flatten(-2)
    return (xf * cos + rotated * sin).type_as(x)


def dense_attention(q, k, v, grid):
    """Default self-attention backend: exact softmax(q k^T / sqrt(128)) v. `grid` is unused by dense attention."""
    return F.scaled_dot_product_attention(q, k, v)


class PatchEmbed3D(nn.Module):
    def __init__(self, patch_size, in_channels, hidden_size, dtype=None, device=None, operations=nn):
        super().__init__()
        self.patch_size = tuple(patch_size)
        self.proj = operations.Conv3d(in_channels, hidden_size, kernel_size=self.patch_size,
                                      stride=self.patch_size, dtype=dtype, device=device)

    def forward(self, x):
        """[B, C, T, H, W] -> tokens [B, N, hidden] in (T, H', W') order; H and W are zero-padded to the patch."""
        _, ph, pw = self.patch_size
        x = F.pad(x, (0, -x.shape[-1] % pw, 0, -x.shape[-2] % ph))
        return self.proj(x).flatten(2).transpose(1, 2)


class TimestepEmbedder(nn.Module):
    def __init__(self, t_embed_dim, frequency_embedding_size, dtype=None, device=None, operations=nn):
        super().__init__()
        self.frequency_embedding_size = frequency_embedding_size
        self.mlp = nn.Sequential(
            operations.Linear(frequency_embedding_size, t_embed_dim, bias=True, dtype=dtype, device=device),
            nn.SiLU(),
            operations.Linear(t_embed_dim, t_embed_dim, bias=True, dtype=dtype, device=device),
        )

    def forward(self, t):
        """t: [M] fp32 -> [M, t_embed_dim] fp32."""
        return run_fp32(self.mlp, timestep_embedding(t, self.frequency_embedding_size))


class CaptionEmbedder(nn.Module):
    def __init__(self, in_channels, hidden_size, dtype=None, device=None, operations=nn):
        super().__init__()
        self.y_proj = nn.Sequential(
            operations.Linear(in_channels, hidden_size, bias=True, dtype=dtype, device=device),
            nn.GELU(approximate="tanh"),
            operations.Linear(hidden_size, hidden_size, bias=True, dtype=dtype, device=device),
        )

    def forward(self, context, mask):
        """Project every text row, then zero the padded rows (the reference's `text_tokens_zero_pad`).

        The zeroed rows stay in the sequence: cross-attention covers them with no mask, and their keys are the
        k biases, so they take softmax mass. Whatever the input held at padded rows does not matter.
        """
        y = self.y_proj(context)
        return torch.where(mask[..., None], y, torch.zeros((), dtype=y.dtype, device=y.device))


class SelfAttention(nn.Module):
    """Multi-head self-attention with per-head q/k RMSNorm and 3D RoPE.

    The attention kernel is a swappable callable `attention_backend(q, k, v, grid)`: q, k, v are
    [B, heads, N, 128] after norm and RoPE, grid is the (T, H', W') token grid of the whole latent. q and k
    always hold whole latent frames (T-major), so a backend that needs their frame counts reads them as
    N_q // (H' W') and N_k // (H' W'); they differ from T when conditioning frames are present.
    """

    def __init__(self, dim, num_heads, dtype=None, device=None, operations=nn):
        super().__init__()
        self.num_heads = num_heads
        self.qkv = operations.Linear(dim, 3 * dim, bias=True, dtype=dtype, device=device)
        self.q_norm = RMSNorm(HEAD_DIM, dtype=dtype, device=device)
        self.k_norm = RMSNorm(HEAD_DIM, dtype=dtype, device=device)
        self.proj = operations.Linear(dim, dim, bias=True, dtype=dtype, device=device)
        self.attention_backend = dense_attention

    def forward(self, x, rope, grid, num_cond_tokens, cached_kv=None, record_kv=None):
        """num_cond_tokens: the leading condition tokens (they attend only among themselves; all of x when the
        condition runs alone to fill a cache). cached_kv: the condition's (k, v) from such a run: x then holds the
        other tokens only, which attend to the condition and to themselves. record_kv: a list that gets this
        block's (k, v) appended (after norm and RoPE, as a later call takes them)."""
        B, N, C = x.shape
        q, k, v = self.qkv(x).view(B, N, 3, self.num_heads, HEAD_DIM).permute(2, 0, 3, 1, 4).unbind(0)
        q = apply_rope(self.q_norm(q), *rope)
        k = apply_rope(self.k_norm(k), *rope)
        if record_kv is not None:
            record_kv.append((k, v))
        if cached_kv is not None:
            k_cond, v_cond = (t.expand(B, -1, -1, -1) for t in cached_kv)
            out = self.attention_backend(q, torch.cat([k_cond, k], dim=2), torch.cat([v_cond, v], dim=2), grid)
        elif 0 < num_cond_tokens < N:
            # Conditioning tokens attend only among themselves; noisy tokens attend to everything.
            n = num_cond_tokens
            out = torch.cat([self.attention_backend(q[:, :, :n], k[:, :, :n], v[:, :, :n], grid),
                             self.attention_backend(q[:, :, n:], k, v, grid)], dim=2)
        else:
            out = self.attention_backend(q, k, v, grid)
        return self.proj(out.transpose(1, 2).reshape(B, N, C))


class CrossAttention(nn.Module):
    """Text cross-attention: q from the video tokens, k/v from the caption rows, q/k RMSNorm, no RoPE, no mask."""

    def __init__(self, dim, num_heads, dtype=None, device=None, operations=nn):
        super().__init__()
        self.num_heads = num_heads
        self.q_linear = operations.Linear(dim, dim, bias=True, dtype=dtype, device=device)
        self.kv_linear = operations.Linear(dim, 2 * dim, bias=True, dtype=dtype, device=device)
        self.proj = operations.Linear(dim, dim, bias=True, dtype=dtype, device=device)
        self.q_norm = RMSNorm(HEAD_DIM, dtype=dtype, device=device)
        self.k_norm = RMSNorm(HEAD_DIM, dtype=dtype, device=device)

    def forward(self, x, y, num_cond_tokens):
        """Conditioning tokens get an exact zero output (not even the proj bias), as in the reference."""
        if num_cond_tokens >= x.shape[1]:
            return torch.zeros_like(x)
        if num_cond_tokens:
            out = self._attend(x[:, num_cond_tokens:], y)
            return torch.cat([out.new_zeros(x.shape[0], num_cond_tokens, x.shape[2]), out], dim=1)
        return self._attend(x, y)

    def _attend(self, x, y):
        B, N, C = x.shape
        q = self.q_norm(self.q_linear(x).view(B, N, self.num_heads, HEAD_DIM))
        k, v = self.kv_linear(y).view(B, y.shape[1], 2, self.num_heads, HEAD_DIM).unbind(2)
        k = self.k_norm(k)
        out = F.scaled_dot_product_attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2))
        return self.proj(out.transpose(1, 2).reshape(B, N, C))


class FeedForwardSwiGLU(nn.Module):
    def __init__(self, dim, hidden_dim, dtype=None, device=None, operations=nn):
        super().__init__()
        self.w1 = operations.Linear(dim, hidden_dim, bias=False, dtype=dtype, device=device)
        self.w2 = operations.Linear(hidden_dim, dim, bias=False, dtype=dtype, device=device)
        self.w3 = operations.Linear(dim, hidden_dim, bias=False, dtype=dtype, device=device)

    def forward(self, x):
        return self.w2(silu_mul(self.w1(x), self.w3(x)))


@fused_on_cuda
def silu_mul(a, b):
    return F.silu(a) * b


class LongCatBlock(nn.Module):
    """x += gate_msa * SelfAttn(mod(x)); x += CrossAttn(LN_affine(x), y); x += gate_mlp * FFN(mod(x)).

    The six adaLN chunks come per latent frame from the timestep embedding; cross-attention has no gate.
    """

    def __init__(self, hidden_size, num_heads, adaln_tembed_dim, ffn_hidden, dtype=None, device=None,
                 operations=nn):
        super().__init__()
        kw = dict(dtype=dtype, device=device)
        self.adaLN_modulation = nn.Sequential(
            nn.SiLU(), operations.Linear(adaln_tembed_dim, 6 * hidden_size, bias=True, **kw))
        self.attn = SelfAttention(hidden_size, num_heads, operations=operations, **kw)
        self.pre_crs_attn_norm = operations.LayerNorm(hidden_size, eps=NORM_EPS, elementwise_affine=True, **kw)
        self.cross_attn = CrossAttention(hidden_size, num_heads, operations=operations, **kw)
        self.ffn = FeedForwardSwiGLU(hidden_size, ffn_hidden, operations=operations, **kw)

    def forward(self, x, y, t_emb, rope, grid, num_cond_tokens, cached_kv=None, record_kv=None):
        shift_msa, scale_msa, gate_msa, shift_mlp, scale_mlp, gate_mlp = \
            run_fp32(self.adaLN_modulation, t_emb).unsqueeze(2).chunk(6, dim=-1)  # each [B, T, 1, C]
        attn = self.attn(modulate(x, shift_msa, scale_msa), rope, grid, num_cond_tokens, cached_kv, record_kv)
        x = gated_add(x, gate_msa, attn)
        x = x + self.cross_attn(run_fp32(self.pre_crs_attn_norm, x).to(x.dtype), y, num_cond_tokens)
        return gated_add(x, gate_mlp, self.ffn(modulate(x, shift_mlp, scale_mlp)))


class FinalLayer(nn.Module):
    def __init__(self, hidden_size, patch_volume, out_channels, adaln_tembed_dim, dtype=None, device=None,
                 operations=nn):
        super().__init__()
        kw = dict(dtype=dtype, device=device)
        self.linear = operations.Linear(hidden_size, patch_volume * out_channels, bias=True, **kw)
        self.adaLN_modulation = nn.Sequential(
            nn.SiLU(), operations.Linear(adaln_tembed_dim, 2 * hidden_size, bias=True, **kw))

    def forward(self, x, t_emb):
        """Modulated LN (no affine) per frame, then the output Linear in fp32 on the model-dtype input."""
        shift, scale = run_fp32(self.adaLN_modulation, t_emb).unsqueeze(2).chunk(2, dim=-1)
        return run_fp32(self.linear, modulate(x, shift, scale))


class LongCatDiT(nn.Module):
    """LongCat-Video DiT. Dimensions come from `dit_config_from_state_dict`; head dim is always 128."""

    def __init__(self, hidden_size, depth, num_heads, caption_channels, adaln_tembed_dim, ffn_hidden,
                 in_channels=16, out_channels=16, patch_size=(1, 2, 2), frequency_embedding_size=256,
                 dtype=None, device=None, operations=nn):
        super().__init__()
        if hidden_size != num_heads * HEAD_DIM:
            raise ValueError(f"hidden_size {hidden_size} != num_heads {num_heads} x head dim {HEAD_DIM}")
        if patch_size[0] != 1:
            raise ValueError(f"temporal patch size must be 1, got patch_size {tuple(patch_size)}")
        kw = dict(dtype=dtype, device=device, operations=operations)
        self.patch_size = tuple(patch_size)
        self.out_channels = out_channels
        self.x_embedder = PatchEmbed3D(patch_size, in_channels, hidden_size, **kw)
        self.t_embedder = TimestepEmbedder(adaln_tembed_dim, frequency_embedding_size, **kw)
        self.y_embedder = CaptionEmbedder(caption_channels, hidden_size, **kw)
        self.blocks = nn.ModuleList(
            LongCatBlock(hidden_size, num_heads, adaln_tembed_dim, ffn_hidden, **kw) for _ in range(depth))
        self.final_layer = FinalLayer(hidden_size, math.prod(patch_size), out_channels, adaln_tembed_dim, **kw)

    def set_self_attention(self, fn):
        """Swap the self-attention kernel of every block (see `SelfAttention`); None restores dense SDPA."""
        for block in self.blocks:
            block.attn.attention_backend = fn or dense_attention

    def residual_dtype(self, x):
        """The reference keeps the residual stream in the weights' dtype. Weights stored in a dtype torch does
        not compute in (fp8 under ComfyUI's manual casting) fall back to the dtype the caller passes x in."""
        dtype = self.x_embedder.proj.weight.dtype
        return dtype if dtype in COMPUTE_DTYPES else x.dtype

    def forward(self, x, timestep, context, context_mask=None, num_cond_latents=0, condition_cache=None,
                transformer_options=None):
        """Raw reference output (fp32, [B, out, T, H, W]), before the sampler's sign flip (velocity = -out).

        x: [B, in, T, H, W] latents. timestep: [B] or per latent frame [B, T], 0..1000 scale.
        context: [B, L, C] or [B, 1, L, C] text-encoder rows. context_mask: [B, L], 1 = real token; when None,
        the rows of `context` that are exactly zero are the padding (ComfyUI's umT5 output).
        num_cond_latents: leading clean conditioning latent frames (their timestep must be 0).
        condition_cache: a ConditionCache: the conditioning frames' keys and values are computed once (the
        reference's KV cache) and only the other frames run through the blocks; the conditioning frames' output is
        then 0. transformer_options: accepted, unused.
        """
        B, _, T, H, W = x.shape
        dtype = self.residual_dtype(x)
        _, ph, pw = self.patch_size
        grid = (T, -(-H // ph), -(-W // pw))
        frame_tokens = grid[1] * grid[2]

        if context.dim() == 4:
            context = context.squeeze(1)
        if context_mask is None:
            context_mask = (context != 0).any(dim=-1)
        y = self.y_embedder(context.to(dtype), context_mask.to(device=context.device, dtype=torch.bool))

        if timestep.dim() == 1:
            timestep = timestep[:, None].expand(B, T)
        cos, sin = rope_3d(grid, x.device)
        cached_kv = [None] * len(self.blocks)
        first = 0  # the first latent frame that runs through the blocks
        if condition_cache is not None and num_cond_latents:
            cond = x[:, :, :num_cond_latents]
            if bool((cond == cond[:1]).all()):  # the same condition for the whole batch (cond and uncond of CFG)
                cond = cond[:1]
            n = num_cond_latents * frame_tokens
            cached_kv = condition_cache.get(cond, lambda: self.condition_kv(cond, (cos[:n], sin[:n]), grid, dtype))
            first, num_cond_latents = num_cond_latents, 0

        h = self.x_embedder(x[:, :, first:].to(dtype))
        t_emb = self.embed_timesteps(timestep[:, first:], dtype)
        rope = (cos[first * frame_tokens:], sin[first * frame_tokens:])
        for block, kv in zip(self.blocks, cached_kv):
            h = block(h, y, t_emb, rope, grid, num_cond_latents * frame_tokens, kv)

        out = self.final_layer(h, t_emb)
        out = rearrange(out, "B (T Hp Wp) (pt ph pw C) -> B C (T pt) (Hp ph) (Wp pw)",
                        T=grid[0] - first, Hp=grid[1], Wp=grid[2], pt=1, ph=ph, pw=pw)
        out = out[:, :, :, :H, :W].float()
        if first:
            out = torch.cat([out.new_zeros(B, out.shape[1], first, H, W), out], dim=2)
        return out

    def embed_timesteps(self, timestep, dtype):
        """[B, T] timesteps -> [B, T, t_embed] fp32; the reference rounds them to the model dtype first."""
        B, T = timestep.shape
        return self.t_embedder(timestep.to(dtype).float().flatten()).view(B, T, -1)

    def condition_kv(self, cond, rope, grid, dtype):
        """[(k, v) per block] of clean conditioning frames alone: timestep 0, attending only among themselves,
        no cross-attention, exactly as they run beside the noisy frames (which never influence them)."""
        h = self.x_embedder(cond.to(dtype))
        t_emb = self.embed_timesteps(cond.new_zeros(cond.shape[0], cond.shape[2]), dtype)
        kv = []
        for block in self.blocks:
            h = block(h, None, t_emb, rope, grid, h.shape[1], record_kv=kv)
        return kv


class ConditionCache:
    """The conditioning frames' keys and values for one sampling run (they never change while it samples: clean,
    timestep 0, attending only to themselves). Holds one condition; a different one replaces it."""

    def __init__(self):
        self.condition = None
        self.kv = None

    def get(self, condition, compute):
        held = self.condition
        if held is None or held.shape != condition.shape or held.dtype != condition.dtype or \
                held.device != condition.device or not torch.equal(held, condition):
            self.kv = None  # free the old one before computing the new one
            self.kv = compute()
            self.condition = condition.clone()
        return self.kv


def dit_config_from_state_dict(shapes):
    """LongCatDiT constructor arguments read off tensor shapes ({key: shape}); ValueError if not a LongCat DiT."""
    required = ["x_embedder.proj.weight", "t_embedder.mlp.0.weight", "y_embedder.y_proj.0.weight",
                "blocks.0.attn.qkv.weight", "blocks.0.attn.q_norm.weight", "blocks.0.ffn.w1.weight",
                "blocks.0.pre_crs_attn_norm.weight", "final_layer.linear.weight"]
    missing = [k for k in required if k not in shapes]
    if len(missing) == len(required):
        found = ", ".join(list(shapes)[:3]) or "no keys at all"
        raise ValueError(f"not a LongCat-Video DiT state dict: none of its keys are present (found {found})")
    if missing:
        raise ValueError(f"not a LongCat-Video DiT state dict: missing {', '.join(missing)}")
    proj = tuple(shapes["x_embedder.proj.weight"])
    if len(proj) != 5:
        raise ValueError(f"not a LongCat-Video DiT state dict: x_embedder.proj.weight has shape {proj}, "
                         "expected a Conv3d weight [hidden, in, pt, ph, pw]")
    head_dim = tuple(shapes["blocks.0.attn.q_norm.weight"])
    if head_dim != (HEAD_DIM,):
        raise ValueError(f"not a LongCat-Video DiT state dict: attention head dim {head_dim}, expected {HEAD_DIM}")
    hidden_size, in_channels, patch_size = proj[0], proj[1], proj[2:]
    if hidden_size % HEAD_DIM:
        raise ValueError(f"not a LongCat-Video DiT state dict: hidden size {hidden_size} is not a multiple "
                         f"of the head dim {HEAD_DIM}")
    block_ids = {int(k.split(".")[1]) for k in shapes if k.startswith("blocks.") and k.split(".")[1].isdigit()}
    depth = len(block_ids)
    if block_ids != set(range(depth)):
        raise ValueError(f"not a LongCat-Video DiT state dict: block indices {sorted(block_ids)} are not 0..n-1")
    t_embed, frequency_embedding_size = shapes["t_embedder.mlp.0.weight"]
    return dict(
        hidden_size=hidden_size,
        depth=depth,
        num_heads=hidden_size // HEAD_DIM,
        caption_channels=shapes["y_embedder.y_proj.0.weight"][1],
        adaln_tembed_dim=t_embed,
        ffn_hidden=shapes["blocks.0.ffn.w1.weight"][0],
        in_channels=in_channels,
        out_channels=shapes["final_layer.linear.weight"][0] // math.prod(patch_size),
        patch_size=tuple(patch_size),
        frequency_embedding_size=frequency_embedding_size,
    )

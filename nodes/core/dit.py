"""The LongCat-Video DiT (Meituan, 13.6B) in plain torch.

Layers come from an injected `operations` namespace (`Linear`, `Conv3d`, `LayerNorm`): `torch.nn` by default,
`comfy.ops.*` inside ComfyUI, so low-VRAM offload, fp8 storage with manual casting and per-layer patches keep
working. Every Linear is called as a module, never through `F.linear` on its weight, so forward hooks (runtime
LoRA) see its input and output. Module and parameter names are those of the reference state dict; there are no
buffers (RoPE tables are computed per call).

Precision follows the reference: the timestep embedder, the adaLN linears, the final layer, every norm, RoPE, the
modulation and the gated residual adds run in fp32 (dit_ops); the residual stream and the attention / FFN linears
run in the model dtype.

Memory: a step holds the residual stream x and, during self-attention, one block's q, k and v (the floor is
x + k + v; q is kept in chunks, each freed once it has attended). Everything else runs over chunks of whole latent
frames (`FrameChunks`) and is freed chunk by chunk: the modulation and norm islands, the qkv and output
projections, attention (q-chunked), cross-attention, the FFN and the final layer. Residual adds are in place and no
fp32 copy of the whole residual stream is ever made. bench/bench_activation_memory.py measures the peak.

The clean conditioning frames' keys and values can be computed once per sampling run (`condition_kv`, kept in a
condition_attention.ConditionCache).
"""
import functools
import math

import torch
import torch.nn as nn
import torch.nn.functional as F
from einops import rearrange

from .condition_attention import ConditionLayout
from .dit_ops import HEAD_DIM, NORM_EPS, RMSNorm, Rope3D, gated_add_, modulate, norm_rope, run_fp32, sdpa, silu_mul, \
    timestep_embedding
from .frame_chunks import ATTENTION_PARTS, TOKEN_PARTS, FrameChunks

COMPUTE_DTYPES = (torch.float32, torch.float16, torch.bfloat16)


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
    """Multi-head self-attention with per-head q/k RMSNorm and 3D RoPE, run by the block in two passes over chunks
    of frames: `project` computes q, k, v of every token, then `attend` runs one chunk of queries at a time.

    Dense attention runs through the model's attention kernel (`sdpa`). A backend `attention_backend(q, k, v, grid)`
    can replace it: q, k, v are [B, heads, n, 128] after norm and RoPE, grid is the (T, H', W') token grid of the
    whole latent. q and k always hold whole latent
    frames (T-major), so a backend that needs their frame counts reads them as N_q // (H' W') and N_k // (H' W');
    they are fewer than T for a chunk of queries and for the conditioning frames' own keys.
    A backend may keep its keys in an order of its own (block-sparse attention: tile order). If it has
    `key_tile(grid, num_cond_frames)` and that returns a tile, k and v are stored through
    `backend.arrange_keys(chunk, chunk_grid)` in chunks of whole tile rows, and attention calls
    `backend.attend_tiled(q, k, v, grid)`; None there means dense attention for this grid.
    """

    def __init__(self, dim, num_heads, dtype=None, device=None, operations=nn):
        super().__init__()
        self.num_heads = num_heads
        self.qkv = operations.Linear(dim, 3 * dim, bias=True, dtype=dtype, device=device)
        self.q_norm = RMSNorm(HEAD_DIM, dtype=dtype, device=device)
        self.k_norm = RMSNorm(HEAD_DIM, dtype=dtype, device=device)
        self.proj = operations.Linear(dim, dim, bias=True, dtype=dtype, device=device)
        self.attention_backend = None  # None: dense, through the model's attention kernel

    def plan(self, grid, num_cond_frames, attention):
        """(attention function (q, k, v, grid), key tile or None) for this grid: the backend's, or dense attention
        through the kernel `attention(q, k, v, heads)`."""
        backend = self.attention_backend
        if backend is not None and not hasattr(backend, "key_tile"):
            return backend, None
        tile = backend.key_tile(grid, num_cond_frames) if backend is not None else None
        if tile:
            return backend.attend_tiled, tile
        return (lambda q, k, v, grid: attention(q, k, v, self.num_heads)), None

    def project(self, x, shift, scale, rope, chunks, tile, key_frames, cached_kv=None):
        """Queries, k, v of all tokens of x: modulated, projected, normed and rotated chunk by chunk. k and v:
        [B, heads, tokens of frames 0..key_frames, 128], arranged by the backend when `tile` is set, the leading
        frames copied from `cached_kv` (a condition's (k, v)) when x starts after them; queries: a list of (token
        slice, frame slice, q [B, heads, n, 128]) per chunk, so that each can be freed as soon as it has attended."""
        B = x.shape[0]
        frame_tokens = rope.grid[1] * rope.grid[2]
        k, v = (x.new_empty(B, self.num_heads, key_frames * frame_tokens, HEAD_DIM) for _ in range(2))
        if cached_kv is not None:
            cached = cached_kv[0].shape[2]
            k[:, :, :cached].copy_(cached_kv[0])  # the cache holds one batch row when the condition is shared
            v[:, :, :cached].copy_(cached_kv[1])
        arrange = self.attention_backend.arrange_keys if tile else None
        queries = []
        for rows, frames in chunks:
            chunk_grid = (frames.stop - frames.start, *rope.grid[1:])
            q = x.new_empty(B, self.num_heads, rows.stop - rows.start, HEAD_DIM)
            keys = slice(frames.start * frame_tokens, frames.stop * frame_tokens)
            k_rows, v_rows = k[:, :, keys], v[:, :, keys]
            self._write_projections(x[:, rows], shift[:, frames], scale[:, frames], q, k_rows, v_rows, arrange,
                                    chunk_grid)
            cos, sin = rope.tables(frames)
            q.copy_(norm_rope(q, self.q_norm.cast_weight(q), cos, sin, self.q_norm.eps))
            if arrange:
                cos, sin = (arrange(t[None, None], chunk_grid)[0, 0] for t in (cos, sin))
            k_rows.copy_(norm_rope(k_rows, self.k_norm.cast_weight(k), cos, sin, self.k_norm.eps))
            queries.append((rows, frames, q))
        return queries, k, v

    def _write_projections(self, x, shift, scale, q, k, v, arrange, grid):
        """The raw q, k, v of a chunk written into its rows of the buffers: the qkv output lives only in here."""
        B, n, _ = x.shape
        raw = self.qkv(modulate(x, shift, scale)).view(B, n, 3, self.num_heads, HEAD_DIM).permute(2, 0, 3, 1, 4)
        q.copy_(raw[0])
        k.copy_(arrange(raw[1], grid) if arrange else raw[1])
        v.copy_(arrange(raw[2], grid) if arrange else raw[2])

    def attend(self, q, k, v, grid, attention):
        """The projected attention output [B, n, C] of the queries q [B, heads, n, 128] over k, v."""
        out = attention(q, k, v, grid)
        B, _, n, _ = out.shape
        return self.proj(out.transpose(1, 2).reshape(B, n, -1))


class CrossAttention(nn.Module):
    """Text cross-attention: q from the video tokens, k/v from the caption rows, q/k RMSNorm, no RoPE, no mask.
    The caption's keys and values are computed once per block (`text_keys`), the queries per chunk of tokens."""

    def __init__(self, dim, num_heads, dtype=None, device=None, operations=nn, context_dim=None):
        super().__init__()
        self.num_heads = num_heads
        self.q_linear = operations.Linear(dim, dim, bias=True, dtype=dtype, device=device)
        self.kv_linear = operations.Linear(context_dim or dim, 2 * dim, bias=True, dtype=dtype, device=device)
        self.proj = operations.Linear(dim, dim, bias=True, dtype=dtype, device=device)
        self.q_norm = RMSNorm(HEAD_DIM, dtype=dtype, device=device)
        self.k_norm = RMSNorm(HEAD_DIM, dtype=dtype, device=device)

    def text_keys(self, y):
        """k, v [B, heads, L, 128] of the caption rows y [B, L, C]."""
        B, L, _ = y.shape
        k, v = self.kv_linear(y).view(B, L, 2, self.num_heads, HEAD_DIM).unbind(2)
        return self.k_norm(k).transpose(1, 2), v.transpose(1, 2)

    def forward(self, x, k, v, attention=sdpa):
        """x [B, N, C] attends to the caption's k, v through the kernel `attention(q, k, v, heads)`."""
        B, N, C = x.shape
        q = self.q_norm(self.q_linear(x).view(B, N, self.num_heads, HEAD_DIM))
        out = attention(q.transpose(1, 2), k, v, self.num_heads)
        return self.proj(out.transpose(1, 2).reshape(B, N, C))


class FeedForwardSwiGLU(nn.Module):
    def __init__(self, dim, hidden_dim, dtype=None, device=None, operations=nn):
        super().__init__()
        self.w1 = operations.Linear(dim, hidden_dim, bias=False, dtype=dtype, device=device)
        self.w2 = operations.Linear(hidden_dim, dim, bias=False, dtype=dtype, device=device)
        self.w3 = operations.Linear(dim, hidden_dim, bias=False, dtype=dtype, device=device)

    def forward(self, x):
        return self.w2(silu_mul(self.w1(x), self.w3(x)))



class LongCatBlock(nn.Module):
    """x += gate_msa * SelfAttn(mod(x)); x += CrossAttn(LN_affine(x), y); x += gate_mlp * FFN(mod(x)).

    The six adaLN chunks come per latent frame from the timestep embedding; cross-attention has no gate and gives
    the conditioning tokens an exact zero (they are left as they are, not even the proj bias is added).
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

    def forward(self, x, y, t_emb, rope, grid, num_cond_tokens, first_frame=0, cached_kv=None, record_kv=None,
                attention=sdpa, layout=None):
        """Updates the residual stream x [B, N, C] in place (and returns it).

        x holds the latent frames from `first_frame` on (t_emb [B, T', C] at least up to its last frame), of the
        clip's token grid `grid`, whose leading num_cond_tokens tokens are the condition. Three ways to run: the whole
        clip (first_frame 0); the condition alone to fill a cache (x = the condition, y None, `record_kv` gets this
        block's (k, v) appended); the noisy frames alone (first_frame = the condition's frames) next to the
        condition's `cached_kv`. `attention(q, k, v, heads)`: the attention kernel (see `sdpa`). `layout` (a
        ConditionLayout) says which keys each frame attends to.

        Self-attention runs in two passes over chunks of frames: q, k, v of every token first, then attention and
        the gated add one chunk of queries at a time. Cross-attention and the FFN run chunk by chunk too.
        """
        shift_msa, scale_msa, gate_msa, shift_mlp, scale_mlp, gate_mlp = \
            run_fp32(self.adaLN_modulation, t_emb).unsqueeze(2).chunk(6, dim=-1)  # each [B, T', 1, C]
        layout = layout or ConditionLayout(num_cond_tokens // (grid[1] * grid[2]))
        chunks, last_frame = self.self_attention(x, shift_msa, scale_msa, gate_msa, rope, grid, layout, first_frame,
                                                 cached_kv, record_kv, attention=attention)
        self.text_cross_attention(x, y, chunks(TOKEN_PARTS, max(first_frame, layout.num_cond_frames), last_frame),
                                  attention)
        self.feed_forward(x, shift_mlp, scale_mlp, gate_mlp, chunks(TOKEN_PARTS, first_frame, last_frame))
        return x

    def self_attention(self, x, shift, scale, gate, rope, grid, layout, first_frame=0, cached_kv=None,
                       record_kv=None, visit=None, attention=sdpa):
        """x += gate * SelfAttn(mod(x)), in two passes over chunks of frames; returns (the FrameChunks of this
        clip, the last frame + 1). `visit(frames, q, k)` (optional) sees each chunk of queries and all keys
        before the chunk attends."""
        frame_tokens = grid[1] * grid[2]
        num_cond_frames = layout.num_cond_frames
        last_frame = first_frame + x.shape[1] // frame_tokens
        self_attention, tile = self.attn.plan(grid, num_cond_frames, attention)
        chunks = FrameChunks(grid, num_cond_frames, multiple=tile[0] if tile else 1, origin=first_frame,
                             cuts=layout.cuts)
        queries, k, v = self.attn.project(x, shift, scale, rope, chunks(ATTENTION_PARTS, first_frame, last_frame),
                                          tile, last_frame, cached_kv)
        if record_kv is not None:
            record_kv.append((k, v))
        while queries:
            rows, frames, q = queries.pop(0)  # each chunk of queries is freed once it has attended
            if visit is not None:
                visit(frames, q, k)
            first, stop = layout.key_frames(frames.start)
            keys = slice(first * frame_tokens, None if stop is None else stop * frame_tokens)
            gated_add_(x[:, rows], gate[:, frames], self.attn.attend(q, k[:, :, keys], v[:, :, keys], grid, self_attention))
        del q, k, v
        return chunks, last_frame

    def text_cross_attention(self, x, y, chunks, attention=sdpa):
        """x += CrossAttn(LN_affine(x), y) on the given chunks (the noisy frames: the condition gets none)."""
        chunks = list(chunks)
        if chunks:
            text_k, text_v = self.cross_attn.text_keys(y)
        for rows, _ in chunks:
            x[:, rows] += self.cross_attn(run_fp32(self.pre_crs_attn_norm, x[:, rows]).to(x.dtype), text_k, text_v,
                                          attention)

    def feed_forward(self, x, shift, scale, gate, chunks):
        for rows, frames in chunks:
            gated_add_(x[:, rows], gate[:, frames], self.ffn(modulate(x[:, rows], shift[:, frames], scale[:, frames])))


class FinalLayer(nn.Module):
    def __init__(self, hidden_size, patch_volume, out_channels, adaln_tembed_dim, dtype=None, device=None,
                 operations=nn):
        super().__init__()
        kw = dict(dtype=dtype, device=device)
        self.linear = operations.Linear(hidden_size, patch_volume * out_channels, bias=True, **kw)
        self.adaLN_modulation = nn.Sequential(
            nn.SiLU(), operations.Linear(adaln_tembed_dim, 2 * hidden_size, bias=True, **kw))

    def forward(self, x, t_emb, chunks):
        """Modulated LN (no affine) per frame, then the output Linear in fp32 on the model-dtype input, per chunk
        of frames (`chunks`: (token slice, frame slice) pairs)."""
        shift, scale = run_fp32(self.adaLN_modulation, t_emb).unsqueeze(2).chunk(2, dim=-1)
        return torch.cat([run_fp32(self.linear, modulate(x[:, rows], shift[:, frames], scale[:, frames]))
                          for rows, frames in chunks], dim=1)


class LongCatDiT(nn.Module):
    """LongCat-Video DiT. Dimensions come from `dit_config_from_state_dict`; head dim is always 128.

    `attention` is the attention kernel every block calls (see `sdpa`); a host swaps it for its own (ComfyUI's
    `optimized_attention`, with launch flags and override nodes) by setting the attribute. `block`: the block class
    (a model variant's blocks take the base arguments).
    """

    attention = staticmethod(sdpa)

    def __init__(self, hidden_size, depth, num_heads, caption_channels, adaln_tembed_dim, ffn_hidden,
                 in_channels=16, out_channels=16, patch_size=(1, 2, 2), frequency_embedding_size=256,
                 dtype=None, device=None, operations=nn, block=LongCatBlock):
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
            block(hidden_size, num_heads, adaln_tembed_dim, ffn_hidden, **kw) for _ in range(depth))
        self.final_layer = FinalLayer(hidden_size, math.prod(patch_size), out_channels, adaln_tembed_dim, **kw)

    def set_self_attention(self, fn):
        """Swap the self-attention backend of every block (see `SelfAttention`); None restores dense attention
        through the model's kernel."""
        for block in self.blocks:
            block.attn.attention_backend = fn

    def residual_dtype(self, x):
        """The reference keeps the residual stream in the weights' dtype. Weights stored in a dtype torch does
        not compute in (fp8 under ComfyUI's manual casting) fall back to the dtype the caller passes x in."""
        dtype = self.x_embedder.proj.weight.dtype
        return dtype if dtype in COMPUTE_DTYPES else x.dtype

    def forward(self, x, timestep, context, context_mask=None, num_cond_latents=0, condition_cache=None,
                transformer_options=None, layout=None, block_inputs=None):
        """Raw reference output (fp32, [B, out, T, H, W]), before the sampler's sign flip (velocity = -out).

        x: [B, in, T, H, W] latents. timestep: [B] or per latent frame [B, T], 0..1000 scale.
        context: [B, L, C] or [B, 1, L, C] text-encoder rows. context_mask: [B, L], 1 = real token; when None,
        the rows of `context` that are exactly zero are the padding (ComfyUI's umT5 output).
        num_cond_latents: leading clean conditioning latent frames (their timestep must be 0).
        condition_cache: a ConditionCache: the conditioning frames' keys and values are computed once (the
        reference's KV cache) and only the other frames run through the blocks; the conditioning frames' output is
        then 0. transformer_options: handed to the attention kernel with every call (see `sdpa`). layout: a
        ConditionLayout of num_cond_latents frames (None: the plain one). block_inputs: extra keyword arguments for
        every block call (a model variant's blocks).
        """
        B, _, T, H, W = x.shape
        dtype = self.residual_dtype(x)
        _, ph, pw = self.patch_size
        grid = (T, -(-H // ph), -(-W // pw))

        if context.dim() == 4:
            context = context.squeeze(1)
        if context_mask is None:
            context_mask = (context != 0).any(dim=-1)
        y = self.y_embedder(context.to(dtype), context_mask.to(device=context.device, dtype=torch.bool))

        if timestep.dim() == 1:
            timestep = timestep[:, None].expand(B, T)
        t_emb = self.embed_timesteps(timestep, dtype)
        layout = layout or ConditionLayout(num_cond_latents)
        rope = Rope3D(grid, x.device, layout.time_positions(T))
        attention = functools.partial(self.attention, transformer_options=transformer_options)
        num_cond_tokens = num_cond_latents * grid[1] * grid[2]
        cached_kv = [None] * len(self.blocks)
        first = 0  # the first latent frame that runs through the blocks
        if condition_cache is not None and num_cond_latents:
            cached_kv = self.cached_condition(condition_cache, x[:, :, :num_cond_latents], rope, grid, dtype,
                                              attention, layout)
            first = num_cond_latents

        h = self.x_embedder(x[:, :, first:].to(dtype)).contiguous()  # the residual stream, updated in place
        for block, kv in zip(self.blocks, cached_kv):
            h = block(h, y, t_emb, rope, grid, num_cond_tokens, first, kv, attention=attention, layout=layout,
                      **(block_inputs or {}))

        out = self.final_layer(h, t_emb, FrameChunks(grid, origin=first)(TOKEN_PARTS, first))
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

    @torch.compiler.disable  # compares tensors, a data-dependent decision: under torch.compile it runs eagerly,
    # one graph break per step before the blocks, which stay whole graphs
    def cached_condition(self, condition_cache, cond, rope, grid, dtype, attention, layout=None):
        """[(k, v) per block] of the clean conditioning frames cond [B, in, n_c, H, W] from `condition_cache`,
        computed there if it holds another condition; one batch row when the batch shares it (CFG's cond and
        uncond)."""
        if cond.shape[0] > 1 and bool((cond == cond[:1]).all()):
            cond = cond[:1]
        return condition_cache.get(cond, lambda: self.condition_kv(cond, rope, grid, dtype, attention, layout,
                                                                    condition_cache.new_store()))

    def condition_kv(self, cond, rope, grid, dtype, attention, layout=None, kv=None):
        """[(k, v) per block] of clean conditioning frames [b, in, n_c, H, W] alone, in the clip's token grid `grid`:
        timestep 0, attending only among themselves, no cross-attention, exactly as they run beside the noisy frames
        (which never influence them). Each block's (k, v) is appended to `kv` as soon as it is made (a list, or a
        store in CPU memory: ConditionCache.new_store)."""
        h = self.x_embedder(cond.to(dtype)).contiguous()
        t_emb = self.embed_timesteps(cond.new_zeros(cond.shape[0], cond.shape[2]), dtype)
        kv = [] if kv is None else kv
        for block in self.blocks:
            h = block(h, None, t_emb, rope, grid, h.shape[1], record_kv=kv, attention=attention, layout=layout)
        return kv

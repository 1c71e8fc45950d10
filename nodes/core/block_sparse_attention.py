"""Block-sparse attention (BSA) of the LongCat-Video refinement stage, in plain PyTorch.

The reference ships BSA as a Triton kernel only. The algorithm: group the tokens of the (T, H, W) patch grid into
4x4x4 tiles of 64 tokens, mean-pool q and k per tile, score every (query tile, key tile) pair by the dot product
of the pooled vectors (no scale), keep for each query tile its top int((1 - sparsity) * n_key_tiles) key tiles
(its own tile is not forced in), and run exact softmax attention (scale 1/sqrt(D)) over the kept tiles.

Two executions of the same selection: on CUDA, PyTorch's flex attention with a BlockMask built straight from
the top-k tile indices (64-token blocks, nothing dense is materialised), compiled lazily together with the token
reordering; elsewhere, or if flex attention is missing or fails to compile, a portable path that gathers the kept
key/value tiles per chunk of query tiles and runs SDPA on them.

`block_sparse_attention` takes keys in token order. As the DiT's backend (`BlockSparseAttention`) it gets them
already in tile order, written tile row by tile row as the DiT computes them, so no reordered copy of all keys and
values ever sits next to them, and it is called per chunk of queries.
"""
import functools
import logging
import math
from types import SimpleNamespace

import torch
import torch.nn.functional as F

log = logging.getLogger(__name__)

DEFAULT_SPARSITY = 0.9375  # the reference's refinement setting: 6.25% of the key tiles kept
DEFAULT_TILE = (4, 4, 4)
_GATHER_BUDGET = 1 << 25  # elements of gathered keys per chunk in the portable path (values take as much again)

_kernels = None  # the compiled CUDA path (reorderings and flex attention); False once it turned out unavailable
_warned_grids = set()
_said_outside_compile = False


def tile_order(x: torch.Tensor, grid, tile=DEFAULT_TILE) -> torch.Tensor:
    """[B, H, N, D] tokens in T, H, W order -> the same tokens with every tile contiguous (tiles in T, H, W order)."""
    (T, Hg, W), (t, h, w) = grid, tile
    B, H, _, D = x.shape
    x = x.view(B, H, T // t, t, Hg // h, h, W // w, w, D).permute(0, 1, 2, 4, 6, 3, 5, 7, 8)
    return x.reshape(B, H, -1, D)


def token_order(x: torch.Tensor, grid, tile=DEFAULT_TILE) -> torch.Tensor:
    """Inverse of `tile_order`."""
    (T, Hg, W), (t, h, w) = grid, tile
    B, H, _, D = x.shape
    x = x.view(B, H, T // t, Hg // h, W // w, t, h, w, D).permute(0, 1, 2, 5, 3, 6, 4, 7, 8)
    return x.reshape(B, H, -1, D)


def _grids(q: torch.Tensor, k: torch.Tensor, grid):
    """Key grid and query grid, read off the token counts: both cover whole frames of the (T, H, W) patch grid;
    queries may cover fewer frames than keys (conditioning split, query chunks), keys fewer than T (the
    conditioning frames' own keys), as in the reference."""
    T, Hg, W = grid
    frame = Hg * W
    if k.shape[2] % frame or q.shape[2] % frame or k.shape[2] > T * frame or q.shape[2] > k.shape[2]:
        raise ValueError(f"token counts q={q.shape[2]}, k={k.shape[2]} do not fit the grid {tuple(grid)}")
    return (k.shape[2] // frame, Hg, W), (q.shape[2] // frame, Hg, W)


def _divisible(grid, tile) -> bool:
    return all(n % t == 0 for n, t in zip(grid, tile))


def _keep_count(n_tiles: int, sparsity: float) -> int:
    if not 0.0 <= sparsity < 1.0:
        raise ValueError(f"sparsity must be in [0, 1), got {sparsity}")
    return min(n_tiles, max(1, int((1.0 - sparsity) * n_tiles)))


def _tile_means(x_tiled: torch.Tensor, block: int) -> torch.Tensor:
    B, H, N, D = x_tiled.shape
    return x_tiled.view(B, H, N // block, block, D).mean(dim=3)


def _top_tiles(q_means: torch.Tensor, k_means: torch.Tensor, keep: int) -> torch.Tensor:
    """Indices of the `keep` best key tiles per query tile, in no particular order.

    Pooling and scores stay in the input dtype, as in the reference, so that bf16 runs pick the same tiles.
    """
    scores = q_means @ k_means.transpose(-1, -2)
    return scores.topk(keep, dim=-1, sorted=False).indices


def select_key_tiles(q, k, grid, sparsity=DEFAULT_SPARSITY, tile=DEFAULT_TILE) -> torch.Tensor:
    """[B, heads, n_query_tiles, keep] indices of the key tiles each query tile attends to, in no particular order.

    q, k: [B, heads, N, D] in T, H, W token order; grid: (T, H, W) of the keys. Tiles are numbered in T, H, W
    order of their position in the grid.
    """
    k_grid, q_grid = _grids(q, k, grid)
    if not (_divisible(k_grid, tile) and _divisible(q_grid, tile)):
        raise ValueError(f"grid {tuple(k_grid)} is not divisible into {tuple(tile)} tiles")
    block = tile[0] * tile[1] * tile[2]
    keep = _keep_count(k.shape[2] // block, sparsity)
    q_means = _tile_means(tile_order(q, q_grid, tile), block)
    k_means = _tile_means(tile_order(k, k_grid, tile), block)
    return _top_tiles(q_means, k_means, keep)


def _gather_attention(q_t, k_t, v_t, tiles, block):
    """Portable path: per chunk of query tiles, gather the kept key/value tiles and run SDPA over them."""
    B, H, Nq, D = q_t.shape
    n_q, n_k, keep = Nq // block, k_t.shape[2] // block, tiles.shape[-1]
    q_tiles = q_t.view(B, H, n_q, block, D)
    k_flat = k_t.reshape(B * H * n_k, block, D)
    v_flat = v_t.reshape(B * H * n_k, block, D)
    offsets = (torch.arange(B * H, device=tiles.device) * n_k).view(B, H, 1, 1)
    out = torch.empty_like(q_tiles)
    chunk = max(1, _GATHER_BUDGET // (B * H * keep * block * D))
    for start in range(0, n_q, chunk):
        rows = tiles[:, :, start:start + chunk] + offsets  # [B, H, c, keep] rows of k_flat
        c = rows.shape[2]
        keys = k_flat[rows].view(B, H * c, keep * block, D)
        values = v_flat[rows].view(B, H * c, keep * block, D)
        queries = q_tiles[:, :, start:start + c].reshape(B, H * c, block, D)
        out[:, :, start:start + c] = F.scaled_dot_product_attention(queries, keys, values).view(B, H, c, block, D)
    return out.view(B, H, Nq, D)


def _compiled_kernels():
    """tile_order, token_order and flex_attention under torch.compile (the compiled reorderings are 2.5x faster)."""
    global _kernels
    if _kernels is None:
        try:
            from torch.nn.attention.flex_attention import flex_attention
        except ImportError:
            _kernels = False
        else:
            _kernels = SimpleNamespace(**{fn.__name__: torch.compile(fn, dynamic=False)
                                          for fn in (tile_order, token_order, flex_attention)})
    return _kernels


def _compiled_or_portable(x, compiled, portable):
    """compiled(kernels) on CUDA while the compiled kernels work, else portable(); a compile or kernel failure
    switches to the portable path for good (it computes the same thing)."""
    global _kernels
    kernels = _compiled_kernels() if x.is_cuda and not torch.compiler.is_compiling() else None
    if kernels:
        try:
            return compiled(kernels)
        except torch.OutOfMemoryError:
            raise
        except Exception as err:
            log.warning("compiled block-sparse attention (flex attention) failed (%s: %s); falling back to "
                        "gathered SDPA", type(err).__name__, err)
            _kernels = False
    return portable()


def _flex_attention(q_t, k_t, v_t, tiles, block, flex_attention):
    """Flex attention over the kept tiles; the BlockMask is the top-k index table itself (no dense mask).

    Kernel tiles of 64 x 64 (the default 128 does not divide a 64-token block); 4 warps and 3 stages measured
    fastest on an H100 at the 720p refinement shape.
    """
    from torch.nn.attention.flex_attention import BlockMask

    B, H, n_q, keep = tiles.shape
    n_k = k_t.shape[2] // block
    kv_indices = tiles.to(torch.int32)
    needs_grad = torch.is_grad_enabled() and any(x.requires_grad for x in (q_t, k_t, v_t))
    if needs_grad or not kv_indices.is_cuda:
        # the CPU kernel and the backward's transposed table want the index table to span every key tile
        kv_indices = F.pad(kv_indices, (0, n_k - keep))
    counts = torch.full((B, H, n_q), keep, dtype=torch.int32, device=tiles.device)
    mask = BlockMask.from_kv_blocks(
        counts, kv_indices.contiguous(), BLOCK_SIZE=block, seq_lengths=(q_t.shape[2], k_t.shape[2]),
        compute_q_blocks=needs_grad,
    )
    size = 64 if block % 64 == 0 else block
    options = {"BLOCK_M": size, "BLOCK_N": size, "num_warps": 4, "num_stages": 3}
    return flex_attention(q_t, k_t, v_t, block_mask=mask, kernel_options=options)


def _attend_tiles(q, k_t, v_t, q_grid, tile, keep, reorder, restore, attend):
    block = tile[0] * tile[1] * tile[2]
    q_t = reorder(q, q_grid, tile)
    tiles = _top_tiles(_tile_means(q_t, block), _tile_means(k_t, block), keep)
    return restore(attend(q_t, k_t, v_t, tiles, block), q_grid, tile)


def _sparse_attention(q, k_t, v_t, q_grid, tile, keep):
    """Queries in token order, keys and values in tile order; the output in token order."""
    args = (q, k_t, v_t, q_grid, tile, keep)
    return _compiled_or_portable(
        q, lambda kernels: _attend_tiles(*args, kernels.tile_order, kernels.token_order,
                                         functools.partial(_flex_attention, flex_attention=kernels.flex_attention)),
        lambda: _attend_tiles(*args, tile_order, token_order, _gather_attention))


def _tiled(x, grid, tile):
    return _compiled_or_portable(x, lambda kernels: kernels.tile_order(x, grid, tile), lambda: tile_order(x, grid, tile))


def _warn_dense(k_grid, q_grid, tile):
    key = (k_grid, q_grid, tuple(tile))
    if key not in _warned_grids:
        _warned_grids.add(key)
        log.warning("block-sparse attention needs T, H, W divisible by the tile %s, but the grid is %s "
                    "(queries %s); using dense attention", tuple(tile), k_grid, q_grid)


def block_sparse_attention(q, k, v, grid, sparsity=DEFAULT_SPARSITY, tile=DEFAULT_TILE) -> torch.Tensor:
    """Softmax attention of each query tile over its top-k key tiles; [B, heads, N, D] in, same layout out.

    q, k, v: [B, heads, N, D], tokens in T, H, W order; grid: (T, H, W) of the patch grid. Queries and keys cover
    whole frames; queries may cover fewer frames than the keys (same H, W), as the conditioning split of the DiT
    does. A grid that does not divide into tiles falls back to dense SDPA with a warning; keeping every key tile
    (sparsity 0) is dense SDPA.
    """
    k_grid, q_grid = _grids(q, k, grid)
    if not (_divisible(k_grid, tile) and _divisible(q_grid, tile)):
        _warn_dense(k_grid, q_grid, tile)
        return F.scaled_dot_product_attention(q, k, v)
    keep = _keep_count(k.shape[2] // (tile[0] * tile[1] * tile[2]), sparsity)
    if keep == k.shape[2] // (tile[0] * tile[1] * tile[2]):
        return F.scaled_dot_product_attention(q, k, v)
    return _sparse_attention(q, _tiled(k, k_grid, tile), _tiled(v, k_grid, tile), q_grid, tile, keep)


class BlockSparseAttention:
    """Block-sparse attention as the DiT's self-attention backend (see `SelfAttention` in dit.py).

    Called with keys in token order it is `block_sparse_attention`. For a grid that divides into tiles it asks for
    its keys in tile order instead (`key_tile`): the DiT stores k and v through `arrange_keys` as it computes them,
    tile row by tile row, and calls `attend_tiled` per chunk of queries (whole tile rows, token order).
    """

    def __init__(self, sparsity=DEFAULT_SPARSITY, tile=DEFAULT_TILE):
        _keep_count(1, sparsity)  # rejects a sparsity outside [0, 1) now, not at the first step
        self.sparsity, self.tile = float(sparsity), tuple(tile)

    def __call__(self, q, k, v, grid):
        return block_sparse_attention(q, k, v, grid, self.sparsity, self.tile)

    def key_tile(self, grid, num_cond_frames):
        """The tile for storing the keys of this grid in tile order, or None where attention runs dense: sparsity
        0, or a grid or conditioning split that does not divide into tiles (logged once)."""
        T, Hg, W = grid
        q_grid = (T - num_cond_frames, Hg, W)
        if not (_divisible(grid, self.tile) and _divisible(q_grid, self.tile)):
            _warn_dense(tuple(grid), q_grid, self.tile)
            return None
        n_tiles = math.prod(grid) // math.prod(self.tile)
        return self.tile if _keep_count(n_tiles, self.sparsity) < n_tiles else None

    def arrange_keys(self, x, grid):
        """[B, heads, n, D] keys of whole tile rows (grid: their frames, H, W) -> their tile-order positions."""
        return _tiled(x, grid, self.tile)

    def attend_tiled(self, q, k_tiled, v_tiled, grid):
        """q in token order (whole tile rows), k and v in tile order; the output in token order. Inside a model
        that torch.compile traces (TorchCompileModel), it runs outside the compiled graph (`_outside_compile`)."""
        if torch.compiler.is_compiling():
            return _outside_compile(self, q, k_tiled, v_tiled, grid)
        k_grid, q_grid = _grids(q, k_tiled, grid)
        keep = _keep_count(k_tiled.shape[2] // math.prod(self.tile), self.sparsity)
        return _sparse_attention(q, k_tiled, v_tiled, q_grid, self.tile, keep)


@torch.compiler.disable
def _outside_compile(backend, q, k_tiled, v_tiled, grid):
    """Block-sparse attention called from a torch.compile'd model: its tile selection changes with every step's
    queries and keys, and on CUDA it has compiled kernels of its own (flex attention), so it runs eagerly between
    the compiled pieces of the block (a graph break before and after it); said once in the log."""
    global _said_outside_compile
    if not _said_outside_compile:
        _said_outside_compile = True
        log.warning("LongCat block-sparse attention under torch.compile: it runs outside the compiled graph (its "
                    "tile selection changes every step; its own kernels are compiled already); the rest of each "
                    "block is compiled")
    return backend.attend_tiled(q, k_tiled, v_tiled, grid)

"""Block-sparse attention against brute force written with explicit loops over tiles (longcat-video.md §3)."""
import logging
import math

import pytest
import torch
import torch.nn.functional as F

from longcat_pack.nodes.core import block_sparse_attention as bsa
from longcat_pack.nodes.core.block_sparse_attention import block_sparse_attention, select_key_tiles

TILE = (4, 4, 4)


def qkv(grid, q_frames=None, B=2, heads=3, D=16, dtype=torch.float64, seed=0):
    g = torch.Generator().manual_seed(seed)
    T, H, W = grid
    nq = (q_frames or T) * H * W
    q = torch.randn(B, heads, nq, D, generator=g, dtype=dtype)
    k = torch.randn(B, heads, T * H * W, D, generator=g, dtype=dtype)
    v = torch.randn(B, heads, T * H * W, D, generator=g, dtype=dtype)
    return q, k, v


def tile_tokens(grid):
    """Token indices (T, H, W order) of every 4x4x4 tile, tiles numbered in T, H, W order."""
    T, H, W = grid
    tiles = []
    for it in range(T // 4):
        for ih in range(H // 4):
            for iw in range(W // 4):
                tiles.append([(t * H + h) * W + w
                              for t in range(4 * it, 4 * it + 4)
                              for h in range(4 * ih, 4 * ih + 4)
                              for w in range(4 * iw, 4 * iw + 4)])
    return tiles


def brute_force_selection(q, k, grid, q_frames, keep):
    """Per (batch, head, query tile): the set of the `keep` key tiles with the largest mean(q) . mean(k)."""
    _, H, W = grid
    q_tiles, k_tiles = tile_tokens((q_frames, H, W)), tile_tokens(grid)
    selection = {}
    for b in range(q.shape[0]):
        for h in range(q.shape[1]):
            k_means = [k[b, h, idx].mean(dim=0) for idx in k_tiles]
            for i, idx in enumerate(q_tiles):
                q_mean = q[b, h, idx].mean(dim=0)
                scores = [float(q_mean @ km) for km in k_means]
                best = sorted(range(len(scores)), key=lambda j: -scores[j])[:keep]
                selection[b, h, i] = set(best)
    return selection


def brute_force_output(q, k, v, grid, q_frames, selection):
    """Dense softmax attention with a token mask built from the selected tiles."""
    _, H, W = grid
    q_tiles, k_tiles = tile_tokens((q_frames, H, W)), tile_tokens(grid)
    mask = torch.zeros(q.shape[0], q.shape[1], q.shape[2], k.shape[2], dtype=torch.bool)
    for (b, h, i), chosen in selection.items():
        for j in chosen:
            mask[b, h, torch.tensor(q_tiles[i])[:, None], torch.tensor(k_tiles[j])[None, :]] = True
    scores = (q @ k.transpose(-1, -2)) / math.sqrt(q.shape[-1])
    return torch.softmax(scores.masked_fill(~mask, float("-inf")), dim=-1) @ v


def as_sets(tiles):
    B, H, n, _ = tiles.shape
    return {(b, h, i): set(tiles[b, h, i].tolist()) for b in range(B) for h in range(H) for i in range(n)}


@pytest.mark.parametrize("grid,q_frames,sparsity,keep", [
    ((8, 8, 8), None, 0.75, 2),         # 8 tiles, keep int(0.25 * 8) = 2
    ((8, 8, 8), None, 0.9375, 1),       # int(0.5) = 0 -> at least one tile
    ((12, 4, 8), None, 0.5, 3),         # 6 tiles, non-cubic grid
    ((8, 4, 8), 4, 0.5, 2),             # queries cover fewer frames than keys (conditioning split)
])
def test_selection_and_output_match_brute_force(grid, q_frames, sparsity, keep):
    q, k, v = qkv(grid, q_frames)
    q_frames = q_frames or grid[0]
    tiles = select_key_tiles(q, k, grid, sparsity, TILE)
    assert tiles.shape == (2, 3, q.shape[2] // 64, keep)
    expected = brute_force_selection(q, k, grid, q_frames, keep)
    assert as_sets(tiles) == expected
    out = block_sparse_attention(q, k, v, grid, sparsity, TILE)
    torch.testing.assert_close(out, brute_force_output(q, k, v, grid, q_frames, expected))


def test_keys_of_the_conditioning_frames_alone():
    """Conditioning queries attend to the conditioning keys only: keys may cover fewer frames than the grid."""
    grid = (8, 4, 8)
    q, k, v = (t[:, :, :4 * 32] for t in qkv(grid, seed=5))
    expected = brute_force_output(q, k, v, (4, 4, 8), 4, brute_force_selection(q, k, (4, 4, 8), 4, 1))
    torch.testing.assert_close(block_sparse_attention(q, k, v, grid, 0.5, TILE), expected)


def test_backend_attends_query_chunks_over_tiled_keys():
    """The DiT's way: keys arranged tile row by tile row, queries one tile row at a time in token order."""
    grid = (12, 4, 8)
    q, k, v = qkv(grid, seed=6)
    backend = bsa.BlockSparseAttention(0.5, TILE)
    frame = 32
    k_t, v_t = (torch.cat([backend.arrange_keys(t[:, :, f * frame:(f + 4) * frame], (4, 4, 8))
                           for f in range(0, 12, 4)], dim=2) for t in (k, v))
    assert torch.equal(k_t, bsa.tile_order(k, grid))
    whole = block_sparse_attention(q, k, v, grid, 0.5, TILE)
    for f in range(0, 12, 4):
        rows = slice(f * frame, (f + 4) * frame)
        torch.testing.assert_close(backend.attend_tiled(q[:, :, rows], k_t, v_t, grid), whole[:, :, rows])


def test_chunked_gather_matches_brute_force(monkeypatch):
    monkeypatch.setattr(bsa, "_GATHER_BUDGET", 1)  # one query tile per chunk
    grid = (8, 8, 8)
    q, k, v = qkv(grid, seed=1)
    out = block_sparse_attention(q, k, v, grid, 0.5, TILE)
    expected = brute_force_output(q, k, v, grid, 8, brute_force_selection(q, k, grid, 8, 4))
    torch.testing.assert_close(out, expected)


def test_sparsity_zero_is_dense():
    grid = (8, 8, 8)
    q, k, v = qkv(grid, seed=2)
    torch.testing.assert_close(block_sparse_attention(q, k, v, grid, 0.0, TILE),
                               F.scaled_dot_product_attention(q, k, v))


def test_condition_tokens_attend_among_themselves_on_the_clip_grid():
    """The DiT's conditioning split hands BSA the condition's 4 frames of a 12-frame clip grid: keys and queries
    count their frames from the tokens, as the reference does, so it is BSA over the condition's own grid."""
    q, k, v = qkv((4, 8, 8), seed=6)
    torch.testing.assert_close(block_sparse_attention(q, k, v, (12, 8, 8), 0.75, TILE),
                               block_sparse_attention(q, k, v, (4, 8, 8), 0.75, TILE))


def test_non_divisible_grid_falls_back_to_dense(caplog):
    grid = (5, 8, 8)
    q, k, v = qkv(grid, seed=3)
    with caplog.at_level(logging.WARNING, logger=bsa.__name__):
        out = block_sparse_attention(q, k, v, grid, 0.9375, TILE)
    assert "dense attention" in caplog.text and "(5, 8, 8)" in caplog.text
    torch.testing.assert_close(out, F.scaled_dot_product_attention(q, k, v))


def test_bad_arguments():
    q, k, v = qkv((8, 8, 8))
    with pytest.raises(ValueError):
        block_sparse_attention(q, k, v, (8, 8, 4), 0.5)  # token count does not fit the grid
    with pytest.raises(ValueError):
        block_sparse_attention(q, k, v, (8, 8, 8), 1.0)


def test_tile_order_round_trip():
    grid = (8, 4, 8)
    x = torch.arange(256.0).view(1, 1, 256, 1)
    tiled = bsa.tile_order(x, grid)
    assert tiled[0, 0, :64, 0].tolist() == [float(i) for i in tile_tokens(grid)[0]]
    assert torch.equal(bsa.token_order(tiled, grid), x)


def test_flex_path_matches_gather_path():
    pytest.importorskip("torch.nn.attention.flex_attention")
    grid = (8, 8, 8)
    q, k, v = qkv(grid, B=1, heads=2, dtype=torch.float32, seed=4)
    q_t, k_t, v_t = (bsa.tile_order(x, grid) for x in (q, k, v))
    tiles = bsa._top_tiles(bsa._tile_means(q_t, 64), bsa._tile_means(k_t, 64), 3)
    try:
        flex = bsa._flex_attention(q_t, k_t, v_t, tiles, 64, bsa._compiled_kernels().flex_attention)
    except Exception as err:  # the CUDA path is what production uses; CPU support varies by torch version
        pytest.skip(f"flex attention does not run on CPU in torch {torch.__version__}: {type(err).__name__}")
    torch.testing.assert_close(flex, bsa._gather_attention(q_t, k_t, v_t, tiles, 64), rtol=1e-5, atol=1e-5)

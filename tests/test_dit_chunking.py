"""The DiT runs its per-token work over chunks of whole latent frames, its attention per chunk of queries, and
stores keys in the backend's order (tile order for block-sparse attention): with chunks of one frame it gives the
golden outputs, with conditioning frames too, block-sparse attention stays the same selection, and runtime LoRA
hooks see every chunk."""
import logging

import pytest
import torch
import torch.nn.functional as F

from longcat_pack.nodes.core import block_sparse_attention as bsa
from longcat_pack.nodes.core import dit, frame_chunks
from longcat_pack.nodes.core.condition_attention import ConditionCache
from longcat_pack.nodes.core.dit_ops import Rope3D, gated_add_, norm_rope
from longcat_pack.nodes.core.lora_files import read_lora
from longcat_pack.nodes.core.lora_patcher import RuntimeLora, linear_weights, prepare_stack
from test_dit_golden import CASES, TOL, build_model, golden, merge_loras, run, weights  # noqa: F401  (fixtures)


def one_frame_chunks(monkeypatch):
    """Every chunk as small as the backend allows (one latent frame, or one tile row of frames). Each constant is
    patched where it is read: the minimum by FrameChunks, the parts by the DiT's modules."""
    monkeypatch.setattr(frame_chunks, "MIN_CHUNK_TOKENS", 1)
    monkeypatch.setattr(dit, "ATTENTION_PARTS", 10_000)
    monkeypatch.setattr(dit, "TOKEN_PARTS", 10_000)


@pytest.mark.parametrize("name", CASES)
def test_golden_cases_in_one_frame_chunks(name, weights, golden, golden_dir, monkeypatch):  # noqa: F811
    cases, tensors = golden
    case = cases[name]
    model = build_model(weights)
    merge_loras(model, golden_dir, case["lora"])
    whole = run(model, tensors, name, case["inputs"]["num_cond_latents"])  # 48 tokens: one chunk
    one_frame_chunks(monkeypatch)
    chunked = run(model, tensors, name, case["inputs"]["num_cond_latents"])
    torch.testing.assert_close(chunked, tensors[case["output"]["key"]], **TOL)
    torch.testing.assert_close(chunked, whole, atol=1e-6, rtol=1e-6)


def chunk_list(chunks, parts, start=0):
    return [(rows.start, rows.stop, frames.start, frames.stop) for rows, frames in chunks(parts, start)]


def test_frame_chunks_cover_whole_frames_and_respect_the_conditioning_split(monkeypatch):
    monkeypatch.setattr(frame_chunks, "MIN_CHUNK_TOKENS", 1)
    grid = (13, 2, 3)  # 6 tokens a frame
    chunks = frame_chunks.FrameChunks(grid, num_cond_frames=4, multiple=2)
    got = chunk_list(chunks, 4)  # 13 / 4 -> 4 frames a chunk
    assert [(f0, f1) for _, _, f0, f1 in got] == [(0, 4), (4, 8), (8, 12), (12, 13)]
    assert all((r0, r1) == (6 * f0, 6 * f1) for r0, r1, f0, f1 in got)
    assert [(f0, f1) for *_, f0, f1 in chunk_list(chunks, 5)] == [(0, 2), (2, 4), (4, 6), (6, 8), (8, 10),
                                                                   (10, 12), (12, 13)]  # ceil(13/5)=3 -> 2
    assert [(f0, f1) for *_, f0, f1 in chunk_list(chunks, 4, start=4)] == [(4, 8), (8, 12), (12, 13)]
    assert [(f0, f1) for *_, f0, f1 in chunk_list(frame_chunks.FrameChunks(grid, 3), 2)] == [(0, 3), (3, 10), (10, 13)]
    monkeypatch.setattr(frame_chunks, "MIN_CHUNK_TOKENS", 30)  # at least 5 frames
    assert [(f0, f1) for *_, f0, f1 in chunk_list(frame_chunks.FrameChunks(grid), 12)] == [(0, 5), (5, 10), (10, 13)]


def test_rope_tables_of_any_frames_follow_the_3d_layout():
    """cos/sin of token (t, h, w), channel c: the t, h or w position times 1/10000^(2i/dim) of its axis
    (t: 44 channels, h: 42, w: 42), each frequency on an interleaved pair (longcat-video.md §2.5)."""
    grid = (5, 3, 4)
    rope = Rope3D(grid, "cpu")
    cos, sin = rope.tables(slice(2, 4))
    expected = torch.empty(2 * 3 * 4, 128, dtype=torch.float64)
    for n, (t, h, w) in enumerate((t, h, w) for t in range(2, 4) for h in range(3) for w in range(4)):
        c = 0
        for pos, dim in ((t, 44), (h, 42), (w, 42)):
            for i in range(dim // 2):
                angle = pos / 10000 ** (2 * i / dim)
                expected[n, c + 2 * i] = expected[n, c + 2 * i + 1] = angle
            c += dim
    torch.testing.assert_close(cos.double(), expected.cos(), atol=1e-6, rtol=0)
    torch.testing.assert_close(sin.double(), expected.sin(), atol=1e-6, rtol=0)


def tiled_grid_inputs(golden_tensors, frames=8):
    """A latent of `frames` x 16 x 16 (grid frames x 8 x 8: tiles of 4x4x4 tokens) and the golden prompt."""
    x = torch.randn(1, 16, frames, 16, 16, generator=torch.Generator().manual_seed(3))
    return x, torch.tensor([700.0]), golden_tensors["a_base.text"], golden_tensors["a_base.text_mask"]


@pytest.mark.parametrize("num_cond_latents", [0, 4])
def test_block_sparse_backend_with_tiled_keys_equals_token_order(num_cond_latents, weights, golden,  # noqa: F811
                                                                 monkeypatch):
    """The backend object stores k, v tiled and attends per chunk of queries; the plain function, in one piece and
    with keys in token order, selects the same tiles and gives the same output."""
    _, tensors = golden
    model = build_model(weights)
    x, t, text, mask = tiled_grid_inputs(tensors)
    model.set_self_attention(lambda q, k, v, grid: bsa.block_sparse_attention(q, k, v, grid, 0.75))
    with torch.no_grad():
        expected = model(x, t, text, mask, num_cond_latents=num_cond_latents)
        dense = build_model(weights)(x, t, text, mask, num_cond_latents=num_cond_latents)
    one_frame_chunks(monkeypatch)
    backend = bsa.BlockSparseAttention(0.75)
    calls = []
    monkeypatch.setattr(backend, "attend_tiled",
                        lambda q, k, v, grid: calls.append((q.shape[2], k.shape[2])) or
                        bsa.BlockSparseAttention.attend_tiled(backend, q, k, v, grid))
    model.set_self_attention(backend)
    with torch.no_grad():
        out = model(x, t, text, mask, num_cond_latents=num_cond_latents)
    torch.testing.assert_close(out, expected, atol=1e-5, rtol=1e-5)
    assert (out - dense).abs().max() > 1e-3  # 2 of 8 key tiles: not dense attention
    # per block, queries in chunks of one tile row (4 frames of 64 tokens); conditioning queries see their own keys
    per_block = [(256, 256), (256, 512)] if num_cond_latents else [(256, 512), (256, 512)]
    assert calls == per_block * 2


@pytest.mark.parametrize("sparsity", [None, 0.75])
def test_cached_condition_in_chunks_equals_the_whole_clip(sparsity, weights, golden, monkeypatch):  # noqa: F811
    """The condition cache in one-frame chunks (tile rows for block-sparse attention, whose cached keys are tiled
    too): the noisy frames' output is that of the whole clip run in one piece, and the condition runs once."""
    _, tensors = golden
    model = build_model(weights)
    x, _, text, mask = tiled_grid_inputs(tensors)
    t = torch.full((1, 8), 700.0)
    t[:, :4] = 0
    backend = lambda: bsa.BlockSparseAttention(sparsity) if sparsity else None  # noqa: E731
    model.set_self_attention(backend())
    with torch.no_grad():
        expected = model(x, t, text, mask, num_cond_latents=4)
    one_frame_chunks(monkeypatch)
    model.set_self_attention(backend())
    cache = ConditionCache()
    recorded = []
    monkeypatch.setattr(model, "condition_kv", lambda *args, kv=model.condition_kv: recorded.append(1) or kv(*args))
    with torch.no_grad():
        for _ in range(2):
            out = model(x, t, text, mask, num_cond_latents=4, condition_cache=cache)
            torch.testing.assert_close(out[:, :, 4:], expected[:, :, 4:], atol=1e-5, rtol=1e-5)
    assert torch.equal(out[:, :, :4], torch.zeros_like(out[:, :, :4])) and recorded == [1]


def test_block_sparse_backend_runs_dense_where_tiles_do_not_fit(weights, golden, caplog):  # noqa: F811
    _, tensors = golden
    model = build_model(weights)
    x, t, text, mask = tiled_grid_inputs(tensors, frames=6)
    with torch.no_grad():
        dense = model(x, t, text, mask)
        model.set_self_attention(bsa.BlockSparseAttention(0.75))
        with caplog.at_level(logging.WARNING, logger=bsa.__name__):
            out = model(x, t, text, mask)
    assert "dense attention" in caplog.text and "(6, 8, 8)" in caplog.text
    torch.testing.assert_close(out, dense, atol=1e-6, rtol=1e-6)


def test_key_tile_asks_for_tiles_only_where_sparse_attention_runs():
    backend = bsa.BlockSparseAttention(0.9375)
    assert backend.key_tile((8, 8, 8), 0) == (4, 4, 4)
    assert backend.key_tile((8, 8, 8), 4) == (4, 4, 4)
    assert backend.key_tile((8, 8, 8), 2) is None  # the conditioning frames do not fill whole tile rows
    assert backend.key_tile((6, 8, 8), 0) is None
    assert backend.key_tile((8, 8, 6), 0) is None
    assert bsa.BlockSparseAttention(0.0).key_tile((8, 8, 8), 0) is None  # keeps every tile: dense
    with pytest.raises(ValueError):
        bsa.BlockSparseAttention(1.0)


def test_runtime_lora_hooks_see_every_chunk(weights, golden, golden_dir, monkeypatch):  # noqa: F811
    """The forward hooks run per chunk call: each adds its chunk's low-rank term, and the whole is the golden
    output of the distill LoRA (case c)."""
    cases, tensors = golden
    model = build_model(weights)
    stack = [(read_lora(golden_dir / "lora_distill.safetensors"), 0.5)]
    runtime = RuntimeLora(model, prepare_stack(stack, linear_weights(model))).attach()
    rows_seen = []
    model.blocks[0].attn.qkv.register_forward_hook(lambda m, args, out: rows_seen.append(args[0].shape[1]))
    one_frame_chunks(monkeypatch)
    out = run(model, tensors, "c_distill")
    runtime.detach()
    torch.testing.assert_close(out, tensors[cases["c_distill"]["output"]["key"]], **TOL)
    assert rows_seen == [16, 16, 16]  # three frames of 4 x 4 tokens


def test_block_updates_the_residual_stream_in_place(weights):  # noqa: F811
    model = build_model(weights)
    block = model.blocks[0]
    grid = (3, 4, 4)
    x = torch.randn(1, 48, 256)
    before = x.clone()
    y = torch.randn(1, 512, 256)
    t_emb = torch.randn(1, 3, 64)
    with torch.no_grad():
        out = block(x, y, t_emb, Rope3D(grid, "cpu"), grid, 0)
    assert out is x and not torch.equal(x, before)


def test_norm_rope_keeps_the_reference_roundings():
    """bf16: RMSNorm in fp32, cast back, times the weight in bf16, then RoPE in fp32, cast back: bit for bit the
    reference's order of operations."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(1, 2, 12, 128, generator=g).to(torch.bfloat16)
    weight = (1 + 0.1 * torch.randn(128, generator=g)).to(torch.bfloat16)
    cos, sin = Rope3D((3, 2, 2), "cpu").tables(slice(0, 3))
    xf = x.float()
    normed = (xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + 1e-6)).type_as(x) * weight
    a, b = normed.float().unflatten(-1, (-1, 2)).unbind(-1)
    expected = (normed.float() * cos + torch.stack((-b, a), dim=-1).flatten(-2) * sin).type_as(x)
    assert torch.equal(norm_rope(x, weight, cos, sin, 1e-6), expected)


def test_gated_add_is_one_rounding_in_place():
    g = torch.Generator().manual_seed(1)
    x = torch.randn(1, 6, 8, generator=g).to(torch.bfloat16)
    gate = torch.randn(1, 2, 1, 8, generator=g)
    out = torch.randn(1, 6, 8, generator=g).to(torch.bfloat16)
    expected = (x.float().view(1, 2, 3, 8) + gate * out.float().view(1, 2, 3, 8)).view(1, 6, 8).to(torch.bfloat16)
    storage = x.data_ptr()
    gated_add_(x, gate, out)
    assert torch.equal(x, expected) and x.data_ptr() == storage


def test_dense_backend_sees_query_chunks_over_all_keys(weights, golden, monkeypatch):  # noqa: F811
    """A plain backend callable gets each chunk of queries with every key (noisy) or the conditioning keys."""
    _, tensors = golden
    model = build_model(weights)
    calls = []

    def backend(q, k, v, grid):
        calls.append((q.shape[2], k.shape[2]))
        return F.scaled_dot_product_attention(q, k, v)

    model.set_self_attention(backend)
    one_frame_chunks(monkeypatch)
    out = run(model, tensors, "b_per_frame_t", num_cond_latents=1)
    assert calls == [(16, 16), (16, 48), (16, 48)] * 2
    torch.testing.assert_close(out, tensors["b_per_frame_t.out"], **TOL)

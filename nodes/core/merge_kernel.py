"""One GPU kernel launch that merges a whole LoRA stack: out = W + U @ D for every row segment of every target.

Why: the merge is memory bound (rank 128 against 4096-wide weights). torch's out-of-place `addmm` first copies W
into `out` and then runs the GEMM in place (two passes over the weights), and hundreds of small launches add up.
This grouped kernel reads each W tile once, adds U @ D of the fp32 factors accumulated in fp32 and writes `out`
once, rounded once (round-to-odd fp32 sum, as `rounding.add_rounded_once`), so a merge costs about one copy of the
targeted weights. The products keep fp32 accuracy: exact fp32 FMAs ("ieee") for fp32 and float16 weights, three
TF32 tensor-core products ("tf32x3", about 22 bits per factor) for bfloat16 weights, whose 8-bit grid they cannot
move. Used on CUDA when Triton is importable; everything else takes the torch path in
`lora_patcher.merge_segments`.
"""
import torch

try:
    import triton
    import triton.language as tl
except ImportError:  # CPU-only installs
    triton = None

# 32-row steps down 128-column strips (256 with the bf16 factors measured on an H100; the fp32 D block of a strip
# is held in registers, so the strip is half as wide for the same register budget).
BLOCK_M, BLOCK_N, ROWS_PER_PROGRAM, MAX_RANK_BLOCK = 32, 128, 1024, 128
PRECISION = {torch.bfloat16: "tf32x3", torch.float16: "ieee", torch.float32: "ieee"}
TRITON_DTYPES = {}
if triton is not None:
    TRITON_DTYPES = {torch.bfloat16: tl.bfloat16, torch.float16: tl.float16, torch.float32: tl.float32}

    @triton.jit
    def _grouped_merge(w_ptrs, u_ptrs, d_ptrs, o_ptrs, sizes, program_group, group_first_program,
                       ELEM: tl.constexpr, PRECISION: tl.constexpr, ODD: tl.constexpr, BM: tl.constexpr,
                       BN: tl.constexpr, KB: tl.constexpr, CHUNK: tl.constexpr):
        """Group g is (W [M,N], U [M,K], D [K,N], out [M,N]), row-major and contiguous, U and D fp32. Each program
        owns a BN-column strip of CHUNK rows: its D block (K <= KB ranks) stays in registers while it walks down
        the rows, so every W element is read once and U/D are read about K/BN times as often as W."""
        pid = tl.program_id(0)
        g = tl.load(program_group + pid)
        local = pid - tl.load(group_first_program + g)
        M = tl.load(sizes + 3 * g)
        N = tl.load(sizes + 3 * g + 1)
        K = tl.load(sizes + 3 * g + 2)
        strips = tl.cdiv(N, BN)
        w = tl.load(w_ptrs + g).to(tl.pointer_type(ELEM))
        u = tl.load(u_ptrs + g).to(tl.pointer_type(tl.float32))
        d = tl.load(d_ptrs + g).to(tl.pointer_type(tl.float32))
        o = tl.load(o_ptrs + g).to(tl.pointer_type(ELEM))
        cols = (local % strips) * BN + tl.arange(0, BN)
        row0 = (local // strips) * CHUNK
        ks = tl.arange(0, KB)
        b = tl.load(d + ks[:, None] * N + cols[None, :], mask=(ks[:, None] < K) & (cols[None, :] < N), other=0.0)
        for r in tl.range(row0, row0 + CHUNK, BM, num_stages=3):
            rows = r + tl.arange(0, BM)
            mask = (rows[:, None] < M) & (cols[None, :] < N)
            offsets = rows[:, None].to(tl.int64) * N + cols[None, :]
            weight = tl.load(w + offsets, mask=mask, other=0.0).to(tl.float32)
            a = tl.load(u + rows[:, None] * K + ks[None, :], mask=(rows[:, None] < M) & (ks[None, :] < K), other=0.0)
            delta = tl.dot(a, b, input_precision=PRECISION)
            total = weight + delta
            if ODD:  # round the fp32 sum to odd (TwoSum error), so the conversion below rounds the exact sum
                back = total - weight
                error = (weight - (total - back)) + (delta - back)
                bits = total.to(tl.int32, bitcast=True)
                towards = tl.where((error > 0) == (total > 0), 1, -1)
                bits = tl.where((error != 0) & ((bits & 1) == 0), bits + towards, bits)
                total = bits.to(tl.float32, bitcast=True)
            tl.store(o + offsets, total.to(ELEM), mask=mask)


def available(tensor):
    return triton is not None and tensor.is_cuda and tensor.dtype in TRITON_DTYPES


def fits(target):
    """Segments up to MAX_RANK_BLOCK ranks wide (one LoRA of rank <= 128, or several small ones) take the kernel;
    wider ones (two rank-128 LoRAs stacked on one weight) take torch's addmm."""
    return all(seg.col_end - seg.col_start <= MAX_RANK_BLOCK for seg in target.segments)


def grouped_merge(merges):
    """merges: [(W, prepared target, out)] on one CUDA device in one dtype, W and out contiguous (out may be W),
    every target `fits`.
    Writes out[rows] = W[rows] + U @ D[cols] for every segment in a single launch; rows that no segment covers
    are the caller's to copy. Pointers are computed arithmetically: no tensor views per segment."""
    if not merges:
        return
    device, dtype = merges[0][0].device, merges[0][0].dtype
    elem, factor_elem = merges[0][0].element_size(), 4
    rows = []  # per segment: w, u, d, out pointers, M, N, K
    for w, target, out in merges:
        assert w.is_contiguous() and out.is_contiguous() and w.dtype == out.dtype == dtype
        assert target.down.dtype == torch.float32 and all(seg.up.dtype == torch.float32 for seg in target.segments)
        assert fits(target), "segments wider than MAX_RANK_BLOCK ranks take the torch path"
        n = w.shape[1]
        w_ptr, o_ptr, d_ptr = w.data_ptr(), out.data_ptr(), target.down.data_ptr()
        for seg in target.segments:
            rows.append((w_ptr + seg.start * n * elem, seg.up.data_ptr(), d_ptr + seg.col_start * n * factor_elem,
                         o_ptr + seg.start * n * elem, seg.end - seg.start, n, seg.col_end - seg.col_start))
    table = torch.tensor(rows, dtype=torch.int64)
    counts = [triton.cdiv(m, ROWS_PER_PROGRAM) * triton.cdiv(n, BLOCK_N) for *_, m, n, _ in rows]
    first = torch.tensor([0] + counts[:-1]).cumsum(0).to(torch.int32)
    program_group = torch.repeat_interleave(torch.arange(len(rows), dtype=torch.int32), torch.tensor(counts))
    ptrs = table[:, :4].t().contiguous().to(device)
    sizes = table[:, 4:].to(torch.int32).contiguous().to(device)
    _grouped_merge[(sum(counts),)](ptrs[0], ptrs[1], ptrs[2], ptrs[3], sizes, program_group.to(device),
                                   first.to(device), ELEM=TRITON_DTYPES[dtype], PRECISION=PRECISION[dtype],
                                   ODD=dtype != torch.float32, BM=BLOCK_M, BN=BLOCK_N, KB=MAX_RANK_BLOCK,
                                   CHUNK=ROWS_PER_PROGRAM, num_warps=4)
